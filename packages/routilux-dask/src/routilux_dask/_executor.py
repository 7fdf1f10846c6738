"""
DaskJobExecutor: whole routilux jobs fanned out to a Dask cluster, one Dask task per run.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import distributed

from routilux import Flow
from routilux.exceptions import ConfigurationError
from routilux.store import JobStore, create_job, run_options
from routilux_dask._handle import DaskJobHandle
from routilux_dask._tasks import run_detached, run_stored, store_url


__all__ = ["DaskJobExecutor"]

_wait: Any = distributed.wait
# Raised by distributed.wait (2024.8+) when one of the futures was cancelled.
_FuturesCancelledError: Any = getattr(distributed.client, "FuturesCancelledError", ())


class DaskJobExecutor:
    """
    Run whole routilux jobs on a Dask cluster: a :class:`~routilux.store.JobExecutor`, and
    a ``backend`` for ``flow.submit(entry, params, backend=executor)``.

    Args:
        client: A ``distributed.Client`` connected to the cluster.
        store: A job store every worker can reach (see the module docs); ``None`` keeps
            each job's state in its task.
        imports: Modules each worker imports before running a job (to register routines
            that are not installed through entry points).
        control_interval: Seconds between two reads of a job's pause/cancel Events.

    .. versionadded:: 0.10
    """

    def __init__(
        self,
        client: distributed.Client,
        store: JobStore | None = None,
        *,
        imports: Sequence[str] = (),
        control_interval: float = 0.1,
    ) -> None:
        #: The Dask client.
        self.client = client
        #: The shared job store, or ``None``.
        self.store = store
        self._url = store_url(store) if store is not None else None
        self._imports = tuple(imports)
        self._interval = control_interval
        self._handles: list[DaskJobHandle] = []

    def __repr__(self) -> str:
        return f"DaskJobExecutor({self.client!r}, store={self.store!r})"

    def prefix(self, job_id: str) -> str:
        """
        Return the name prefix of a job's Dask Events and task keys.
        """
        return f"routilux-{job_id}"

    def submit(
        self,
        flow: Flow | Mapping[str, Any],
        entry_routine_id: str,
        entry_params: Mapping[str, Any] | None = None,
        *,
        execution_strategy: str | None = None,
        job_id: str | None = None,
        checkpoint_every: int = 1,
    ) -> DaskJobHandle:
        """
        Submit a new job of ``flow`` and return its handle at once (what
        ``flow.submit(..., backend=executor)`` calls).

        Args:
            checkpoint_every: Activations between checkpoints in the store (1: every one).
        """
        options = run_options(
            execution_strategy=execution_strategy, checkpoint_every=checkpoint_every
        )
        if self.store is not None:
            new_id = create_job(
                self.store, flow, entry_routine_id, entry_params, job_id=job_id, options=options
            )
            return self.submit_job(new_id)
        data = flow.serialize() if isinstance(flow, Flow) else dict(flow)
        new_id = job_id or str(uuid.uuid4())
        params = dict(entry_params or {})
        holder: list[DaskJobHandle] = []

        def submit(run: int) -> Any:
            state = None
            if holder and holder[0]._last is not None:
                state = holder[0]._last.serialize()
            return self.client.submit(
                run_detached,
                data,
                entry_routine_id,
                params,
                options,
                state,
                new_id,
                self.prefix(new_id),
                self._imports,
                self._interval,
                key=f"{self.prefix(new_id)}-{run}",
                pure=False,
            )

        handle = DaskJobHandle(self, new_id, submit)
        holder.append(handle)
        self._handles.append(handle)
        return handle

    def submit_job(self, job_id: str) -> DaskJobHandle:
        """
        Run (or resume) a job stored in the executor's store; return its handle at once.

        Raises:
            ConfigurationError: The executor has no store.
        """
        url, store = self._url, self.store
        if url is None or store is None:
            msg = "submit_job needs a DaskJobExecutor with a store"
            raise ConfigurationError(msg, name="store", value=None)

        def submit(run: int) -> Any:
            # The attempt now: a task that finds it higher ran (or was settled) already.
            attempt = store.load_job(job_id).attempt
            return self.client.submit(
                run_stored,
                url,
                job_id,
                self.prefix(job_id),
                self._imports,
                self._interval,
                attempt,
                key=f"{self.prefix(job_id)}-{uuid.uuid4().hex[:8]}-{run}",
                pure=False,
            )

        handle = DaskJobHandle(self, job_id, submit)
        self._handles.append(handle)
        return handle

    def shutdown(self, wait: bool = True) -> None:
        """
        Stop submitting; with ``wait``, wait for the submitted jobs' current runs (the
        client and the cluster stay up: they belong to the caller).
        """
        if wait:
            # A future cancelled by its caller (``handle.future.cancel()``) has nothing to
            # wait for; distributed.wait still waits for all the others before it raises
            # FuturesCancelledError for one cancelled meanwhile, so that error is expected.
            futures = [h.future for h in self._handles if not h.future.cancelled()]
            if futures:
                with contextlib.suppress(_FuturesCancelledError):
                    _wait(futures)
        self._handles.clear()
