"""
run_job: run or resume one stored job, checkpointing it into its store; and the helpers
around it (creating a job, the store-backed control, a thread executor).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from routilux.engine._control import JobControl
from routilux.engine._flow import Flow
from routilux.exceptions import (
    InvalidStateError,
    JobNotFoundError,
    JobStoreError,
    RoutineNotFoundError,
    SerializationError,
)
from routilux.model import _lifecycle as lifecycle
from routilux.model._job_state import JobState
from routilux.model._lifecycle import Action
from routilux.model._slot import check_timeout
from routilux.persist._protocols import (
    CLAIMABLE_STATUSES,
    JobStore,
    default_worker_id,
)
from routilux.persist._rebuild import FlowCache, build_flow, rebuild, state_of, stored_flow


if TYPE_CHECKING:
    from routilux.model._stream_event import StreamEvent
    from routilux.persist._protocols import JobHandle


__all__ = [
    "BaseJobHandle",
    "LocalJobExecutor",
    "StoreControl",
    "create_job",
    "load_job_state",
    "run_job",
    "run_options",
]


def run_options(
    *, execution_strategy: str | None = None, checkpoint_every: int = 0
) -> dict[str, Any]:
    """
    Return the run options a new job keeps for every run of it (the ``options`` of
    :func:`create_job`), as an executor's ``submit`` stores them.

    Args:
        execution_strategy: ``"sequential"`` or ``"concurrent"``; ``None``: the flow's.
        checkpoint_every: Activations between checkpoints (0: only when the job rests;
            a negative number counts as 0).

    .. versionadded:: 0.10
    """
    options: dict[str, Any] = {"checkpoint_every": max(0, checkpoint_every)}
    if execution_strategy is not None:
        options["execution_strategy"] = execution_strategy
    return options


class BaseJobHandle:
    """
    A base for the job handles of executors (:class:`~routilux.store.JobHandle`): the job
    id, the repr (``Kind[job id]``, the class attribute ``_kind`` names the kind) and
    ``_stored_state(store)``, the job's last checkpointed JobState in ``store``. A
    subclass adds ``status``, ``state``, ``pause``, ``resume``, ``cancel`` and ``wait``.

    Args:
        job_id: The job's id in the store.

    .. versionadded:: 0.10
    """

    #: The name the handle's repr shows.
    _kind = "JobHandle"

    def __init__(self, job_id: str) -> None:
        self._job_id = job_id

    def __repr__(self) -> str:
        return f"{self._kind}[{self._job_id}]"

    @property
    def job_id(self) -> str:
        """
        The job's id in the store.
        """
        return self._job_id

    def _stored_state(self, store: JobStore) -> JobState:
        # The job's last checkpointed JobState in ``store`` (its flow rebuilt to load it).
        return load_job_state(store, self._job_id)[1]


class StoreControl(JobControl):
    """
    The control of a job run from a store: it reads the job's control request (set by
    :meth:`JobStore.request_control`, for example by ``routilux cancel`` in another
    process) at most every ``interval`` seconds, and hands each request to the scheduler once.

    Args:
        store: The job's store.
        job_id: The job.
        interval: Seconds between two reads of the store.
    """

    def __init__(self, store: JobStore, job_id: str, *, interval: float = 0.2) -> None:
        self._store = store
        self._job_id = job_id
        self._interval = interval
        self._next = 0.0
        self._delivered: str | None = None

    def poll(self) -> str | None:
        """
        Return ``"pause"`` or ``"cancel"`` the first time the store holds that request,
        else ``None``; never blocks for longer than one small read.
        """
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self._interval
        request = self._store.get_control_request(self._job_id)
        if request is None or request == self._delivered:
            return None
        self._delivered = request
        return request


def create_job(
    store: JobStore,
    flow: Flow | Mapping[str, Any],
    entry_routine_id: str,
    entry_params: Mapping[str, Any] | None = None,
    *,
    job_id: str | None = None,
    entry_slot: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> str:
    """
    Store ``flow`` (a Flow or its serialized form) and a new ``pending`` job of it; return
    the job id. Run it with :func:`run_job` here, or hand the id to a :class:`JobExecutor`.

    Args:
        entry_routine_id: The routine the job starts at; ``"ID.SLOT"`` names its slot too
            (read from the right when ``ID.SLOT`` as a whole is not a routine id).
        entry_slot: The slot of the entry routine the entry data goes to; by default as
            ``Flow.execute`` chooses it (``trigger``, else ``input``, else its only slot).
        options: Run options kept with the job: ``checkpoint_every`` (activations between
            checkpoints), ``execution_strategy`` and ``entry_slot``.

    Raises:
        RoutineNotFoundError: ``flow`` has no routine ``entry_routine_id``.
        JobStoreError: A job ``job_id`` exists already (nothing is written then).
        SerializationError: The flow cannot be written as data.

    .. versionchanged:: 0.10 ``entry_slot``.
    """
    data = flow.serialize() if isinstance(flow, Flow) else dict(flow)
    opts = dict(options or {})
    routines = data.get("routines")
    known = routines if isinstance(routines, Mapping) else {}
    if entry_routine_id not in known and "." in entry_routine_id:
        entry_routine_id, _, named = entry_routine_id.rpartition(".")
        opts["entry_slot"] = named
    if entry_slot is not None:
        opts["entry_slot"] = entry_slot
    if isinstance(routines, Mapping) and entry_routine_id not in routines:
        listed = ", ".join(repr(r) for r in routines) or "none"
        msg = f"entry routine {entry_routine_id!r} not found in flow (routines: {listed})"
        raise RoutineNotFoundError(msg, name=entry_routine_id)
    if job_id is not None and _job_exists(store, job_id):
        # Refused before the flow is saved: a refused job writes nothing to the store.
        msg = f"a job {job_id!r} exists already in the store"
        raise JobStoreError(msg, job_id=job_id)
    fingerprint = store.save_flow(data)
    new_id = job_id or str(uuid.uuid4())
    store.create_job(
        new_id,
        str(data["flow_id"]),
        fingerprint,
        entry_routine_id=entry_routine_id,
        entry_params=entry_params,
        options=opts,
    )
    return new_id


def _job_exists(store: JobStore, job_id: str) -> bool:
    try:
        store.load_job(job_id)
    except JobNotFoundError:
        return False
    return True


def load_job_state(store: JobStore, job_id: str) -> tuple[Flow, JobState]:
    """
    Rebuild a stored job without running it: its Flow (routines by registered type name)
    and its JobState (the last checkpoint, or a fresh ``pending`` one).

    Raises:
        JobNotFoundError: No such job or flow version.
        FlowMismatchError: The stored flow does not match the job's fingerprint.
        DeserializationError: The stored flow or state cannot be loaded.
    """
    return rebuild(store, store.load_job(job_id))


_flows = FlowCache()
"""The flows the runs of this process share."""


class _Checkpointer:
    """
    The checkpoint function of one run: saves snapshots under the run's fencing token (a
    store keeps the newest by ``checkpoint_seq``), and keeps the first error that made the
    engine stop the job on this process.
    """

    def __init__(self, store: JobStore, job_id: str, attempt: int) -> None:
        self.store = store
        self.job_id = job_id
        self.attempt = attempt
        self.error: BaseException | None = None

    def __call__(self, job_state: JobState, snapshot: dict[str, Any]) -> bool:
        try:
            return self.store.save_checkpoint(self.job_id, snapshot, attempt=self.attempt)
        except SerializationError:
            raise  # the engine fails the job and writes a lenient last checkpoint
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            raise


def run_job(
    job_id: str,
    store: JobStore,
    control: JobControl | None = None,
    *,
    worker: str | None = None,
    takeover: bool = False,
    retry: bool = False,
    checkpoint_every: int | None = None,
    checkpoint_interval: float | None = None,
    deadline: float | None = None,
    prepare: Callable[[Flow, JobState], None] | None = None,
    on_event: Callable[[StreamEvent], None] | None = None,
) -> JobState:
    """
    Run a stored job until it rests, checkpointing it into ``store``; return its JobState.

    The job's flow version is loaded from the store and its routines are rebuilt by
    registered type name; the runs of one process share the Flow rebuilt for a flow version
    (a Flow is static and shared by its jobs), so a run costs no rebuild after the first.
    A job without state starts at its entry routine; a job with a checkpoint is resumed
    from it: deferred events first, then the pending activations.
    The job is claimed (a compare-and-set on its status and on the attempt read with its
    state, so two runners never run the same state: the one that loses gets a
    ``JobStoreError``), its attempt, the fencing token, goes up by one, and every checkpoint
    is saved under that attempt, so a runner that lost the job to another stops at its
    next checkpoint with :class:`~routilux.exceptions.StaleAttemptError`.

    Checkpoints are written every ``checkpoint_every`` activations, once
    ``checkpoint_interval`` seconds passed since the last one (0: neither; only at rest),
    and when the job pauses, completes, fails or is cancelled. They carry the job's
    checkpoint sequence number and a store keeps the newest, so the last write of a job
    at rest is its final state: the status this returns is the stored status. They are
    taken while nothing of the job runs, so a process that dies re-runs, on the next
    ``run_job``, exactly the activations that had not finished at the last checkpoint (*at
    least once*: those that had finished after it run again; none before it does).
    Handlers that call the outside world can deduplicate with ``ctx.idempotency_key``,
    which is the same in the re-run. The job runs on the flow's workers, never on the
    calling thread, which only waits (so a signal handler of the caller can pause it).

    Args:
        job_id: The job to run.
        store: Where the job lives.
        control: Polled between activations for ``"pause"``/``"cancel"``; by default a
            :class:`StoreControl` reading the store's control requests.
        worker: The worker id recorded on the job (``"<host>:<pid>"`` by default).
        takeover: Also claim a job the store says is ``running`` (its runner is known to
            be dead, for example killed).
        retry: Run a ``failed`` job again (see ``Flow.retry``): its failed activations and
            the work dropped at the failure.
        checkpoint_every: Overrides the job's ``checkpoint_every`` option.
        checkpoint_interval: Overrides the job's ``checkpoint_interval`` option.
        deadline: Seconds from now after which this run fails the job with
            :class:`~routilux.exceptions.JobDeadlineExceeded` (its queued work kept for
            ``retry``); ``None``: none.
        prepare: Called as ``prepare(flow, job_state)`` after loading and before running,
            for example to answer a waiting :class:`HumanInput`. It runs before the job is
            claimed: if it raises, the store is left unchanged. It may change the job state,
            not the flow, which other runs share.
        on_event: Called with each event of the run (see the ``on_event`` option of
            ``Flow.execute``), for example to print them as ``routilux run --follow`` does.

    Returns:
        The JobState at rest: ``paused``, ``completed``, ``failed`` or ``cancelled``.

    Raises:
        JobNotFoundError: No such job.
        JobStateError: The job's status does not allow running it (for example a failed
            job without ``retry``, or a cancelled one).
        JobStoreError: The job cannot be claimed (it is running elsewhere, or another
            runner claimed it since it was read).
        StaleAttemptError: Another runner claimed the job while this one ran it.
        DeserializationError: The stored flow or state cannot be loaded.
        ConfigurationError: ``deadline`` is not a number of seconds > 0.

    .. versionchanged:: 0.10 ``retry``, ``checkpoint_interval``, ``on_event`` and
       ``deadline``; the claim is fenced by the attempt read with the state.
    """
    check_timeout(deadline, "deadline", "deadline")
    record = store.load_job(job_id)
    action = Action.RETRY if retry else Action.RESUME
    statuses: Collection[str] = (
        {"failed"} if retry else CLAIMABLE_STATUSES | ({"running"} if takeover else set())
    )
    if record.status not in statuses:
        lifecycle.next_status(record.status, action, job_id=job_id)
        msg = f"job {job_id!r} is {record.status}; only a pending or paused job can be run"
        if record.status == "running":
            msg += f" (it is running on {record.worker}; take it over if that runner is dead)"
        raise InvalidStateError(msg)
    data = stored_flow(store, record)  # read and checked at each run, even when cached
    with _flows.lease((record.flow_id, record.fingerprint), lambda: build_flow(data)) as flow:
        job_state = state_of(flow, record)
        options = record.options
        every = checkpoint_every
        if every is None:
            every = int(options.get("checkpoint_every", 0) or 0)
        interval = checkpoint_interval
        if interval is None:
            interval = float(options.get("checkpoint_interval", 0) or 0)
        strategy = options.get("execution_strategy")
        entry_slot = options.get("entry_slot")
        if prepare is not None:
            prepare(flow, job_state)
        attempt = store.claim_job(
            job_id, worker=worker or default_worker_id(), statuses=statuses, attempt=record.attempt
        )
        checkpointer = _Checkpointer(store, job_id, attempt)
        if control is None:
            control = StoreControl(store, job_id)
        if record.state is None and not retry:
            flow.submit(
                record.entry_routine_id,
                dict(record.entry_params),
                execution_strategy=strategy if isinstance(strategy, str) else None,
                job_state=job_state,
                entry_slot=entry_slot if isinstance(entry_slot, str) else None,
                checkpoint=checkpointer,
                checkpoint_deltas=True,
                checkpoint_every=every,
                checkpoint_interval=interval,
                control=control,
                deadline=deadline,
                on_event=on_event,
            )
        else:
            reopen = flow.retry if retry else flow.resume
            reopen(
                job_state,
                checkpoint=checkpointer,
                checkpoint_deltas=True,
                checkpoint_every=every,
                checkpoint_interval=interval,
                control=control,
                deadline=deadline,
                on_event=on_event,
            )
        # The job runs on the flow's workers, which other runs of this process share: it
        # leaves them only settled (an interrupted wait waits again, as shutting the flow
        # down and joining its workers did when each run had a flow of its own).
        try:
            job_state.wait_settled()
        except BaseException:
            if checkpointer.error is None:
                job_state.wait_settled()
            raise
        if checkpointer.error is not None:
            raise checkpointer.error
    return job_state


class _LocalHandle(BaseJobHandle):
    """
    A job run by a :class:`LocalJobExecutor`.
    """

    _kind = "LocalJobHandle"

    def __init__(self, executor: LocalJobExecutor, job_id: str, future: Future[JobState]) -> None:
        super().__init__(job_id)
        self._executor = executor
        self._future = future

    def status(self) -> str:
        """
        Return the job's status as the store has it now.
        """
        return self._executor.store.load_job(self._job_id).status

    def state(self) -> JobState:
        """
        Return the job's last checkpointed JobState.
        """
        return self._stored_state(self._executor.store)

    def pause(self) -> None:
        """
        Ask the job to pause at its next activation boundary.
        """
        self._executor.store.request_control(self._job_id, "pause")

    def resume(self) -> None:
        """
        Run the paused job again on the executor's threads.
        """
        self._future = self._executor._start(self._job_id)

    def cancel(self) -> None:
        """
        Cancel the job: at once when it is not running, else at its next boundary.
        """
        store = self._executor.store
        if store.load_job(self._job_id).status in ("pending", "queued", "paused"):
            store.set_status(self._job_id, "cancelled")
        else:
            store.request_control(self._job_id, "cancel")

    def wait(self, timeout: float | None = None) -> JobState:
        """
        Wait until the run rests or ``timeout`` passes; return the stored JobState.
        """
        with contextlib.suppress(TimeoutError):
            self._future.result(timeout)
        return self.state()


class LocalJobExecutor:
    """
    A :class:`~routilux.store.JobExecutor` that runs stored jobs on threads of this process.

    The reference executor: the PostgreSQL and Dask executors do the same with workers
    elsewhere. Every job gets its own Flow, rebuilt from the store.

    Args:
        store: Where the jobs live.
        max_workers: Jobs run at once.
        poll_interval: Seconds between two reads of a running job's control request.
    """

    def __init__(
        self, store: JobStore, max_workers: int = 4, *, poll_interval: float = 0.2
    ) -> None:
        #: Where the jobs live.
        self.store = store
        self._interval = poll_interval
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="routilux-job")

    def _start(self, job_id: str) -> Future[JobState]:
        control = StoreControl(self.store, job_id, interval=self._interval)
        return self._pool.submit(run_job, job_id, self.store, control)

    def submit_job(self, job_id: str) -> JobHandle:
        """
        Run (or resume) the stored job on a thread; return its handle at once.
        """
        return _LocalHandle(self, job_id, self._start(job_id))

    def shutdown(self, wait: bool = True) -> None:
        """
        Stop accepting jobs; with ``wait``, wait for the running ones.
        """
        self._pool.shutdown(wait=wait)
