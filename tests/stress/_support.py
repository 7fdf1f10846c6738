"""
Shared machinery of the stress suite: a delivery ledger, the diamond flow it watches,
a watchdog that reports every thread's stack, and a helper that shakes the GIL.

The ledger is the test's independent account of a job: every emission the routines make
and every handler call they receive, keyed by job id and by a token unique within the job.
Comparing the two (with the job's ``pending_tasks``) proves that no activation ran twice or
was lost, and that paused or cancelled jobs started nothing new.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator

from routilux import (
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobState,
    PluginManager,
    Routine,
    hookimpl,
)


FINAL = frozenset({"completed", "failed", "cancelled"})

#: Where each event of the diamond flow delivers: (source routine, event) -> targets.
DIAMOND_TARGETS: dict[tuple[str, str], tuple[str, ...]] = {
    ("src", "out"): ("left", "right"),
    ("left", "out"): ("join",),
    ("right", "out"): ("join",),
}


def format_all_stacks() -> str:
    """
    Return the current stack of every thread of the process, named.
    """
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        parts.append(f"--- thread {names.get(ident, '?')} ({ident}) ---")
        parts.append("".join(traceback.format_stack(frame)))
    return "\n".join(parts)


class Watchdog:
    """
    Fires once ``seconds`` have passed without :meth:`stop`: records every thread's stack
    in :attr:`report`. Tests wait with timeouts and call :meth:`check` so a hang becomes a
    failure that shows where each thread was, never a frozen run.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.report: str | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stress-watchdog", daemon=True)

    def _watch(self) -> None:
        if not self._stopped.wait(self.seconds):
            self.report = format_all_stacks()

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Disarm the watchdog."""
        self._stopped.set()
        self._thread.join(5)

    @property
    def fired(self) -> bool:
        """True once the deadline passed."""
        return self.report is not None

    def check(self, what: str = "") -> None:
        """Fail with every thread's stack if the watchdog fired."""
        if self.report is not None:
            msg = f"watchdog fired ({self.seconds}s) {what}\n{self.report}"
            raise AssertionError(msg)


def fail_with_stacks(message: str) -> None:
    """Raise an AssertionError carrying every thread's stack."""
    raise AssertionError(f"{message}\n{format_all_stacks()}")


@contextlib.contextmanager
def switch_interval(seconds: float) -> Iterator[None]:
    """Set ``sys.setswitchinterval`` for the block, restoring the old value after."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


class Ledger:
    """
    The test's own account of every job of a flow, kept under one lock.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: job id -> Counter of (target routine, token) emitted.
        self.emitted: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
        #: job id -> Counter of (routine, token) delivered (handler called).
        self.delivered: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
        #: job id -> handlers of the job running now.
        self.running: Counter[str] = Counter()
        #: job id -> "paused" or "cancelled" while the test holds that job stopped.
        self.stopped: dict[str, str] = {}
        #: (job id, why) -> handler starts seen while the job was held stopped.
        self.late_starts: Counter[tuple[str, str]] = Counter()
        #: job id -> sizes of the join slot's append buffer seen by its handler.
        self.join_sizes: dict[str, list[int]] = defaultdict(list)
        #: Anything that broke an invariant as it happened.
        self.violations: list[str] = []
        #: job id -> (target, token) in the order the emissions were made.
        self.emit_order: dict[str, list[tuple[str, str]]] = defaultdict(list)
        #: job id -> (routine, token) in the order the handlers were called.
        self.deliver_order: dict[str, list[tuple[str, str]]] = defaultdict(list)
        #: Called as ``on_start(job_id, routine, token)`` after each handler start is
        #: recorded (outside the ledger's lock).
        self.on_start: Callable[[str, str, str], None] | None = None

    def emit(self, job_id: str, source: str, event: str, token: str) -> None:
        """Record one emission (before ``emit`` is called)."""
        with self.lock:
            for target in DIAMOND_TARGETS[(source, event)]:
                self.emitted[job_id][(target, token)] += 1
                self.emit_order[job_id].append((target, token))

    def start(self, job_id: str, routine: str, token: str) -> None:
        """Record a handler call."""
        with self.lock:
            self.running[job_id] += 1
            key = (routine, token)
            self.delivered[job_id][key] += 1
            if self.delivered[job_id][key] > 1:
                self.violations.append(f"{job_id}: {key} delivered twice")
            if token != "entry" and key not in self.emitted[job_id]:
                self.violations.append(f"{job_id}: {key} delivered but never emitted")
            why = self.stopped.get(job_id)
            if why is not None:
                self.late_starts[(job_id, why)] += 1
            if token != "entry":
                self.deliver_order[job_id].append(key)
        if self.on_start is not None:
            self.on_start(job_id, routine, token)

    def end(self, job_id: str) -> None:
        """Record a handler return."""
        with self.lock:
            self.running[job_id] -= 1

    def hold(self, job_id: str, why: str) -> None:
        """From now on, a handler start of the job is counted as late."""
        with self.lock:
            self.stopped[job_id] = why

    def release(self, job_id: str) -> None:
        """Handler starts of the job are normal again."""
        with self.lock:
            self.stopped.pop(job_id, None)

    def snapshot(self, job_id: str) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
        """Return copies of (emitted, delivered) of one job."""
        with self.lock:
            return Counter(self.emitted[job_id]), Counter(self.delivered[job_id])


def describe(job_state: JobState) -> str:
    """A compact account of a job for failure messages: status, history, pause points."""
    lines = [f"{job_state!r} pending={len(job_state.pending_tasks)}"]
    for record in job_state.get_execution_history():
        data = {k: v for k, v in record.data.items() if k != "traceback"}
        lines.append(f"  {record.routine_id}.{record.event_name} {data}")
    for point in job_state.pause_points:
        lines.append(f"  pause {point.get('reason')} queue={point.get('queue_size')}")
    return "\n".join(lines)


def pending_keys(job_state: JobState) -> Counter[tuple[str, str]]:
    """The (routine, token) pairs a job holds in ``pending_tasks`` and ``failed_tasks``."""
    out: Counter[tuple[str, str]] = Counter()
    for task in [*job_state.pending_tasks, *job_state.failed_tasks]:
        if task.get("entry"):
            out[("src", "entry")] += 1
            continue
        out[(str(task["slot_routine_id"]), str(task["data"]["token"]))] += 1
    return out


def _job_id(routine: Routine) -> str:
    ctx = routine.get_execution_context()
    assert ctx is not None
    return ctx.job_state.job_id


class Source(Routine):
    """Entry: emits ``out`` ``n`` times with tokens ``s0..``."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger
        self.define_slot("trigger", self.go)
        self.define_event("out", ["token"])

    def go(self, n: int = 3) -> None:
        job = _job_id(self)
        self.ledger.start(job, "src", "entry")
        try:
            for i in range(n):
                token = f"s{i}"
                self.ledger.emit(job, "src", "out", token)
                self.emit("out", token=token)
        finally:
            self.ledger.end(job)


class Branch(Routine):
    """A fan-out branch: passes each token on, prefixed with its own name."""

    def __init__(self, ledger: Ledger, name: str, spin: int = 50) -> None:
        super().__init__()
        self.ledger = ledger
        self.name = name
        self.spin = spin
        self.define_slot("inp", self.take)
        self.define_event("out", ["token"])

    def take(self, token: str) -> None:
        job = _job_id(self)
        self.ledger.start(job, self.name, token)
        try:
            acc = 0
            for i in range(self.spin):
                acc += i
            out = f"{self.name}:{token}"
            self.ledger.emit(job, self.name, "out", out)
            self.emit("out", token=out)
        finally:
            self.ledger.end(job)


class FlakyBranch(Branch):
    """A branch whose first attempt at each token fails (before it counts as delivered)."""

    def __init__(self, ledger: Ledger, name: str, spin: int = 50) -> None:
        super().__init__(ledger, name, spin)
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.attempts_lock = threading.Lock()

    def take(self, token: str) -> None:
        job = _job_id(self)
        with self.attempts_lock:
            self.attempts[(job, token)] += 1
            first = self.attempts[(job, token)] == 1
        if first:
            msg = f"first attempt at {token}"
            raise RuntimeError(msg)
        super().take(token)


class StopOnceBranch(Branch):
    """A branch that raises on its first attempt at token ``s1`` of each job (before it
    counts as delivered); its error handler is STOP, so the job fails until retried."""

    def __init__(self, ledger: Ledger, name: str, spin: int = 50) -> None:
        super().__init__(ledger, name, spin)
        self.failed: set[str] = set()
        self.failed_lock = threading.Lock()
        self.set_error_handler(ErrorHandler(strategy=ErrorStrategy.STOP))

    def take(self, token: str) -> None:
        job = _job_id(self)
        if token == "s1":
            with self.failed_lock:
                first = job not in self.failed
                self.failed.add(job)
            if first:
                msg = f"first attempt at {token} of {job}"
                raise RuntimeError(msg)
        super().take(token)


def expected_deliveries(n: int) -> Counter[tuple[str, str]]:
    """What a completed diamond job of ``n`` tokens delivered, each exactly once."""
    out: Counter[tuple[str, str]] = Counter({("src", "entry"): 1})
    for i in range(n):
        for side in ("left", "right"):
            out[(side, f"s{i}")] += 1
            out[("join", f"{side}:s{i}")] += 1
    return out


class Join(Routine):
    """Fan-in with an append merge: each call sees the token list so far."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger
        self.define_slot("inp", self.take, merge_strategy="append")

    def take(self, token: list[str]) -> None:
        job = _job_id(self)
        self.ledger.start(job, "join", token[-1])
        try:
            with self.ledger.lock:
                self.ledger.join_sizes[job].append(len(token))
            if len(set(token)) != len(token):
                with self.ledger.lock:
                    self.ledger.violations.append(f"{job}: append buffer repeats {token}")
        finally:
            self.ledger.end(job)


class Lifecycle:
    """
    A plugin that records, per job, every status change and every ``job_finished`` call.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.finished: Counter[str] = Counter()
        #: Called with each job's JobState once it has started (its status is running).
        self.on_started: Callable[[JobState], None] | None = None

    @hookimpl
    def routilux_job_started(self, job_state: JobState) -> None:
        if self.on_started is not None:
            self.on_started(job_state)

    @hookimpl
    def routilux_job_status_changed(self, job_state: JobState, old: str, new: str) -> None:
        with self.lock:
            self.statuses[job_state.job_id].append((old, new))

    @hookimpl
    def routilux_job_finished(self, job_state: JobState) -> None:
        with self.lock:
            self.finished[job_state.job_id] += 1


def diamond_flow(
    ledger: Ledger,
    strategy: str = "concurrent",
    workers: int = 4,
    plugin: object | None = None,
    spin: int = 50,
    flow_id: str | None = None,
    flaky: bool = False,
    failing: bool = False,
) -> Flow:
    """
    Build ``src -> (left, right) -> join``: fan-out, fan-in, and an append merge at the join.
    ``flaky``: the right branch fails each token's first attempt and retries on a timer.
    ``failing``: the left branch fails each job's first attempt at ``s1`` with a STOP
    error, so a job of two or more tokens fails until it is retried.
    """
    plugins = None
    if plugin is not None:
        plugins = PluginManager(load_entry_points=False)
        plugins.register(plugin)
    flow = Flow(flow_id, execution_strategy=strategy, max_workers=workers, plugins=plugins)
    flow.add_routine(Source(ledger), "src")
    left = StopOnceBranch(ledger, "left", spin) if failing else Branch(ledger, "left", spin)
    flow.add_routine(left, "left")
    right = FlakyBranch(ledger, "right", spin) if flaky else Branch(ledger, "right", spin)
    if flaky:
        right.set_error_handler(
            ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=3, retry_delay=0.002)
        )
    flow.add_routine(right, "right")
    flow.add_routine(Join(ledger), "join")
    flow.connect("src", "out", "left", "inp")
    flow.connect("src", "out", "right", "inp")
    flow.connect("left", "out", "join", "inp")
    flow.connect("right", "out", "join", "inp")
    return flow


def check_job(
    ledger: Ledger, job_state: JobState, *, lossy: bool = False, reloaded: bool = False
) -> list[str]:
    """
    Check the delivery invariants of one settled job; return what is wrong.

    Every activation a job emitted was either delivered once or is still pending (or kept
    in ``failed_tasks`` by a failure, for retry), unless the job was cancelled while it had
    queued work (``lossy``: the dropped ones may be
    missing, but nothing is delivered twice or delivered without an emission). The join's
    append buffer saw sizes 1..n, one per delivery, unless the job was reloaded from data
    (merge buffers are runtime state and start empty in a new process).
    """
    problems: list[str] = []
    job = job_state.job_id
    emitted, delivered = ledger.snapshot(job)
    emitted_entry = Counter({k: v for k, v in emitted.items()})
    delivered_work = Counter({k: v for k, v in delivered.items() if k != ("src", "entry")})
    pending = pending_keys(job_state)
    entry_count = delivered[("src", "entry")] + pending.pop(("src", "entry"), 0)
    if entry_count > 1 or (entry_count == 0 and not lossy):
        problems.append(f"{job}: entry activation accounted {entry_count} times")
    twice = [k for k, v in delivered.items() if v > 1]
    if twice:
        problems.append(f"{job}: delivered more than once: {twice[:5]}")
    unknown = [k for k in delivered_work if k not in emitted_entry]
    if unknown:
        problems.append(f"{job}: delivered without emission: {unknown[:5]}")
    overlap = [k for k in pending if k in delivered_work]
    if overlap:
        problems.append(f"{job}: both delivered and pending: {overlap[:5]}")
    if not lossy:
        accounted = delivered_work + pending
        if accounted != emitted_entry:
            missing = emitted_entry - accounted
            extra = accounted - emitted_entry
            problems.append(
                f"{job} ({job_state.status}): emitted != delivered + pending; "
                f"missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}"
            )
        sizes = sorted(ledger.join_sizes.get(job, []))
        if not reloaded and sizes != list(range(1, len(sizes) + 1)):
            problems.append(f"{job}: append merge sizes not 1..n: {sizes[:20]}")
    return problems
