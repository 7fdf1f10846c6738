"""
DaskJobExecutor (extra ``routilux-core[dask]``): whole jobs fanned out to a Dask cluster.

Each job is one Dask task that runs :func:`~routilux.store.run_job` on a worker; only names
and JSON travel (the task function is pickled by reference, routines are rebuilt by their
registered names). Pause and cancel are cooperative: a flag the scheduler polls between
activations, set from Dask ``Event``\\ s (and the store's control request when there is one).

Durability depends on the store:

- With a store that the workers reach (:class:`~routilux.postgres.PostgresJobStore`, or a
  :class:`~routilux.store.SqliteJobStore` file when the cluster is one machine), every
  activation is checkpointed by default; when a worker dies, Dask runs the task again
  elsewhere and the job resumes from its last checkpoint (at least once).
- Without a store, the job's state lives in the task: a rescheduled task starts the job again
  from what was submitted, and if the Dask scheduler dies, queued and running jobs are lost.

.. versionadded:: 0.10
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from routilux.engine._flow import Flow
from routilux.exceptions import ConfigurationError, InvalidStateError
from routilux.model import _lifecycle as lifecycle
from routilux.model._job_state import JobState
from routilux.persist._runner import BaseJobHandle, run_options
from routilux.store import (
    SETTLED_STATUSES,
    JobControl,
    JobStore,
    SqliteJobStore,
    create_job,
    open_store,
    run_job,
)


try:
    import distributed
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    msg = f"routilux.dask_executor needs the dask extra: pip install 'routilux-core[dask]' ({exc})"
    raise ImportError(msg) from exc


__all__ = ["DaskJobExecutor", "DaskJobHandle"]

# distributed's futures and coordination primitives are only partly annotated: reach them
# through Any, so strict mypy checks our code rather than their stubs.
_Event: Any = distributed.Event
_get_client: Any = distributed.get_client
_wait: Any = distributed.wait
# Raised by distributed.wait (2024.8+) when one of the futures was cancelled.
_FuturesCancelledError: Any = getattr(distributed.client, "FuturesCancelledError", ())

_stores: dict[str, JobStore] = {}
_stores_lock = threading.Lock()


def _store_url(store: JobStore) -> str:
    # The URL Dask workers re-open the store from.
    url = store.url
    if url is None:
        msg = (
            f"{store!r} cannot be reached from Dask workers: use a store other processes can "
            "open (a PostgresJobStore, or a SqliteJobStore file on a single-machine cluster)"
        )
        raise ConfigurationError(msg, name="store", value=store)
    return url


def _open_store(url: str) -> JobStore:
    # One store per worker process and URL (its connections are reused by every task).
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = open_store(url)
        return store


def _stored_rest(store: JobStore, job_id: str) -> JobState:
    # The job's JobState as the store has it (its last checkpoint, or a bare state when it
    # never ran), read without rebuilding its flow: no routine needs to be registered.
    record = store.load_job(job_id)
    if record.state is None:
        state = JobState(record.flow_id, job_id=job_id)
    else:
        state = JobState()
        state.deserialize(record.state)
    lifecycle.restore(state, record.status)
    return state


class _EventControl(JobControl):
    """
    The control of a job on a Dask worker: a thread polls the job's two Dask Events every
    ``interval`` seconds and sets flags, so :meth:`poll` never waits for the scheduler.
    """

    def __init__(self, prefix: str, interval: float) -> None:
        client = _get_client()
        self._events = {
            "cancel": _Event(f"{prefix}-cancel", client=client),
            "pause": _Event(f"{prefix}-pause", client=client),
        }
        self._interval = interval
        self._request: str | None = None
        self._delivered: str | None = None
        self._stop = threading.Event()
        # Read once before the job starts: a job cancelled or paused while it waited in the
        # queue never runs an activation.
        self._read()
        self._thread = threading.Thread(target=self._watch, name="routilux-dask-control")
        self._thread.daemon = True
        self._thread.start()

    def _read(self) -> None:
        for request, event in self._events.items():
            try:
                if event.is_set():
                    self._request = request
                    return
            except Exception:  # noqa: BLE001 - a lost scheduler must not kill the job
                pass

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            self._read()

    def poll(self) -> str | None:
        request = self._request
        if request is None or request == self._delivered:
            return None
        self._delivered = request
        return request

    def close(self) -> None:
        self._stop.set()


def _import(modules: Sequence[str]) -> None:
    for name in modules:
        importlib.import_module(name)


def _run_stored(
    url: str,
    job_id: str,
    prefix: str,
    imports: Sequence[str],
    interval: float,
    submitted_attempt: int,
) -> dict[str, Any]:
    # The Dask task of a job kept in a shared store. Dask runs a task again when the worker
    # running it died (``takeover``: the job is still "running" then; the fencing token
    # still stops a zombie), and also when the worker holding its result died: the job
    # rests then, claimed or settled since the task was submitted (its attempt went up),
    # and the task returns the stored state instead of running the job again.
    _import(imports)
    store = _open_store(url)
    record = store.load_job(job_id)
    if record.status in SETTLED_STATUSES and record.attempt > submitted_attempt:
        return _stored_rest(store, job_id).serialize()
    control = _EventControl(prefix, interval)
    try:
        state = run_job(job_id, store, control, takeover=True)
    finally:
        control.close()
    return state.serialize()


def _run_detached(
    flow_data: dict[str, Any],
    entry: str,
    params: dict[str, Any],
    options: dict[str, Any],
    state_data: dict[str, Any] | None,
    job_id: str,
    prefix: str,
    imports: Sequence[str],
    interval: float,
) -> dict[str, Any]:
    # The Dask task of a job without a shared store: a private in-memory store holds it for
    # the length of the task, and the JobState travels back as the task's result.
    _import(imports)
    store = SqliteJobStore(":memory:")
    control = _EventControl(prefix, interval)
    try:
        create_job(store, flow_data, entry, params, job_id=job_id, options=options)
        if state_data is not None:
            store.save_checkpoint(job_id, state_data, status="paused")
        return run_job(job_id, store, control).serialize()
    finally:
        control.close()
        store.close()


class DaskJobHandle(BaseJobHandle):
    """
    A job submitted to a :class:`DaskJobExecutor`: a :class:`~routilux.store.JobHandle`
    that also reads like a ``concurrent.futures.Future`` (:meth:`result`, :meth:`done`,
    :meth:`exception`, :meth:`add_done_callback`). The result is the JobState at rest:
    ``completed``, ``failed``, ``cancelled`` or ``paused`` (then :meth:`resume` submits it again).
    """

    _kind = "DaskJobHandle"

    def __init__(
        self, executor: DaskJobExecutor, job_id: str, submit: Callable[[int], Any]
    ) -> None:
        super().__init__(job_id)
        self._executor = executor
        self._submit = submit
        self._runs = 0
        self._lock = threading.Lock()
        self._last: JobState | None = None
        # Set when cancel() settled the job while no run of it was under way: the job's
        # state is then the stored one (with a store), or this cancelled state (without).
        self._cancelled = False
        self._cancelled_state: JobState | None = None
        #: The Dask future of the job's current run.
        self.future: Any = self._start()

    def _start(self) -> Any:
        self._runs += 1
        future = self._submit(self._runs)
        return future

    # -- concurrent.futures ----------------------------------------------------------

    def result(self, timeout: float | None = None) -> JobState:
        """
        Wait for the run and return its JobState at rest; for a job :meth:`cancel` settled
        before it ran (or while it was paused), the cancelled JobState, as stored.

        Raises:
            TimeoutError: ``timeout`` passed first.
            Exception: The task failed on the cluster (for example ``KilledWorker``).
        """
        cancelled = self._cancelled_rest()
        if cancelled is not None:
            return cancelled
        data = self.future.result(timeout=timeout)
        state = JobState()
        state.deserialize(data)
        with self._lock:
            self._last = state
        return state

    def done(self) -> bool:
        """
        Return whether the current run has ended.
        """
        return bool(self.future.done())

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """
        Return the error of the current run, or ``None``.
        """
        if self._cancelled:
            return None
        error: BaseException | None = self.future.exception(timeout=timeout)
        return error

    def _cancelled_rest(self) -> JobState | None:
        # The cancelled JobState when cancel() settled the job without a run, else None.
        if not self._cancelled:
            return None
        store = self._executor.store
        if store is not None:
            return _stored_rest(store, self._job_id)
        with self._lock:
            return self._cancelled_state

    def add_done_callback(self, fn: Callable[[DaskJobHandle], object]) -> None:
        """
        Call ``fn(handle)`` when the current run ends.
        """
        self.future.add_done_callback(lambda _f: fn(self))

    # -- JobHandle --------------------------------------------------------------------

    def status(self) -> str:
        """
        Return the job's status: from the store when there is one, else from the task.
        """
        store = self._executor.store
        if store is not None:
            return store.load_job(self._job_id).status
        if not self.future.done():
            return "running"
        if self.future.status != "finished":
            return "failed" if self.future.status == "error" else "cancelled"
        return str(self.result().status)

    def state(self) -> JobState:
        """
        Return the last checkpointed JobState (store), or the last result (no store).

        Raises:
            InvalidStateError: No store, and the current run has not ended.
        """
        store = self._executor.store
        if store is not None:
            return self._stored_state(store)
        if self.future.done():
            return self.result()
        with self._lock:
            last = self._last
        if last is None:
            msg = f"job {self._job_id!r} has no state yet (its first run is under way)"
            raise InvalidStateError(msg)
        return last

    def pause(self) -> None:
        """
        Ask the job to pause at its next activation boundary; :meth:`result` then returns
        the paused JobState and :meth:`resume` continues it.
        """
        self._event("pause").set()
        store = self._executor.store
        if store is not None and store.load_job(self._job_id).status == "running":
            store.request_control(self._job_id, "pause")

    def resume(self) -> None:
        """
        Submit the paused job again (any worker continues it from its pause point).

        Raises:
            InvalidStateError: The job is not paused.
        """
        state = self.result()
        if state.status != "paused":
            msg = f"job {self._job_id!r} is {state.status}; only a paused job can be resumed"
            raise InvalidStateError(msg)
        self._event("pause").clear()
        self.future = self._start()

    def cancel(self) -> None:
        """
        Cancel the job: a running one stops at its next activation boundary; a queued one
        never runs (with a store, its task is dropped) and a paused one is cancelled at once.
        :meth:`result` then returns the cancelled JobState.
        """
        self._event("cancel").set()
        store = self._executor.store
        if store is None:
            # The state lives in the task: a queued task finds the Event set before its
            # first activation; a run that ended paused is cancelled here.
            future = self.future
            if future.done() and future.status == "finished":
                state = self.result()
                if state.status == "paused":
                    lifecycle.transition(state, lifecycle.Action.CANCEL)
                    with self._lock:
                        self._cancelled_state = state
                    self._cancelled = True
            return
        status = store.load_job(self._job_id).status
        if status in ("pending", "paused"):
            # No run holds the job (a queued task has not claimed it yet): settle it in the
            # store, which fences out a task that starts anyway, and drop the task.
            store.set_status(self._job_id, "cancelled")
            self._cancelled = True
            if not self.future.done():
                self.future.cancel()
        elif status == "running":
            store.request_control(self._job_id, "cancel")

    def wait(self, timeout: float | None = None) -> JobState:
        """
        Wait until the run rests or ``timeout`` passes; return the JobState then.
        """
        try:
            return self.result(timeout)
        except TimeoutError:
            return self.state()

    def _event(self, what: str) -> Any:
        return _Event(f"{self._executor.prefix(self._job_id)}-{what}", client=self._executor.client)


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
        self._url = _store_url(store) if store is not None else None
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
                _run_detached,
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
                _run_stored,
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
