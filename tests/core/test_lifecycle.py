"""
The job lifecycle (ARCHITECTURE 5): one transition table, checked cell by cell, on real
jobs through the Flow API, and the findings it fixes (a job never reports ``completed``
while work it was given was dropped; errors are never silent).
"""

from __future__ import annotations

import ast
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Emitter, Gate, Relay, chain, wait_until

from routilux import (
    CallbackOutputHandler,
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobState,
    Routine,
    lifecycle,
)
from routilux.exceptions import JobStateError, RoutiluxWarning
from routilux.job_state import ErrorRecord
from routilux.lifecycle import Action


WAIT = 10.0

# The table of ARCHITECTURE 5, written out: status -> action -> new status (None: refused).
EXPECTED: dict[str, dict[str, str | None]] = {
    "pending": {
        "start": "running",
        "pause": "paused",
        "resume": "running",
        "cancel": "cancelled",
        "retry": None,
        "finish": "completed",
        "fail": "failed",
    },
    "queued": {
        "start": "running",
        "pause": "paused",
        "resume": "running",
        "cancel": "cancelled",
        "retry": None,
        "finish": "completed",
        "fail": "failed",
    },
    "running": {
        "start": "running",
        "pause": "paused",
        "resume": "running",
        "cancel": "cancelled",
        "retry": None,
        "finish": "completed",
        "fail": "failed",
    },
    "paused": {
        "start": None,
        "pause": "paused",
        "resume": "running",
        "cancel": "cancelled",
        "retry": None,
        "finish": "paused",
        "fail": "failed",
    },
    "completed": {
        "start": "running",
        "pause": "paused",
        "resume": "running",
        "cancel": "cancelled",
        "retry": None,
        "finish": "completed",
        "fail": "failed",
    },
    "failed": {
        "start": None,
        "pause": None,
        "resume": None,
        "cancel": None,
        "retry": "running",
        "finish": "failed",
        "fail": "failed",
    },
    "cancelled": {
        "start": None,
        "pause": None,
        "resume": None,
        "cancel": "cancelled",
        "retry": None,
        "finish": "cancelled",
        "fail": "cancelled",
    },
}

CELLS = [(s, a, new) for s, row in EXPECTED.items() for a, new in row.items()]


class TestTransitionTable:
    @pytest.mark.parametrize(("status", "action", "expected"), CELLS)
    def test_cell(self, status: str, action: str, expected: str | None) -> None:
        """Each cell of the table: the new status, or a JobStateError naming job,
        status and action."""
        if expected is None:
            with pytest.raises(JobStateError) as info:
                lifecycle.next_status(status, action, job_id="j1")
            assert ("j1", status, action) == (
                info.value.job_id,
                info.value.status,
                info.value.action,
            )
            assert "j1" in str(info.value) and status in str(info.value)
            assert isinstance(info.value, ValueError)
            assert not lifecycle.allowed(status, action)
        else:
            assert expected == lifecycle.next_status(status, action, job_id="j1")
            assert lifecycle.allowed(status, action)

    def test_table_has_exactly_these_cells(self) -> None:
        """The module's table holds the cells above and no other."""
        expected = {(s, Action(a)): new for s, a, new in CELLS}
        assert expected == dict(lifecycle.TRANSITIONS)

    @pytest.mark.parametrize("action", ["start", "pause", "resume", "cancel", "retry"])
    def test_unknown_status_refuses_user_actions(self, action: str) -> None:
        """A status string the table does not know is kept; every action on it is refused."""
        with pytest.raises(JobStateError, match="'weird' is not a status"):
            lifecycle.next_status("weird", action)

    def test_transition_sets_and_returns_the_new_status(self) -> None:
        """transition() returns the status it set; an action prints as its value."""
        js = JobState("f")
        assert "running" == lifecycle.transition(js, Action.START) == js.status
        assert "paused" == lifecycle.transition(js, "pause") == js.status
        assert ["start", "pause"] == [str(Action.START), str(Action.PAUSE)]

    @pytest.mark.parametrize("action", ["finish", "fail"])
    def test_unknown_status_stands_for_engine_steps(self, action: str) -> None:
        """The engine's own steps leave an unknown status as it is."""
        assert "weird" == lifecycle.next_status("weird", action)

    def test_failed_resume_points_at_retry(self) -> None:
        """Resuming a failed job says to retry it."""
        with pytest.raises(JobStateError, match="retry"):
            lifecycle.next_status("failed", "resume")


def test_nothing_else_assigns_a_status() -> None:
    """Only routilux.lifecycle changes a job's status: no other module of any package
    assigns a ``.status`` attribute or calls ``_set_status``."""
    root = Path(__file__).resolve().parents[2] / "packages"
    offenders = []
    for path in sorted(root.glob("*/src/**/*.py")):
        if path.name == "_lifecycle.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            hits = [t for t in targets if isinstance(t, ast.Attribute) and t.attr == "status"]
            call = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "_set_status"
            )
            where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
            if call or hits:
                offenders.append(where)
    # The one setter (which only the lifecycle calls) and JobStateError's own attribute.
    core = "routilux-core/src/routilux"
    allowed_lines = {
        _line_of(root, f"{core}/model/_job_state.py", "            self.status = status"),
        _line_of(root, f"{core}/exceptions.py", "        self.status = status"),
    }
    assert [] == [o for o in offenders if o not in allowed_lines]


def _line_of(root: Path, relative: str, text: str) -> str:
    lines = (root / relative).read_text(encoding="utf-8").splitlines()
    return f"{relative}:{lines.index(text) + 1}"


# -- real jobs in each status ---------------------------------------------------------


class Boom(Routine):
    """Entry whose first call raises; later calls emit ``out``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, **_: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            msg = "first call fails"
            raise RuntimeError(msg)
        self.emit("out", value="again")


class SelfPause(Routine):
    """Entry that emits twice, then pauses its own job."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, **_: Any) -> None:
        self.emit("out", value=1)
        self.emit("out", value=2)
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.flow.pause(ctx.job_state, "inside")


def _flow() -> Flow:
    flow = Flow(flow_id="life", execution_strategy="concurrent", max_workers=3)
    flow.add_routine(Gate(), "gate")
    flow.add_routine(Boom(), "boom")
    flow.add_routine(SelfPause(), "selfpause")
    flow.add_routine(Relay(), "relay")
    flow.connect("gate", "out", "relay", "input")
    flow.connect("boom", "out", "relay", "input")
    flow.connect("selfpause", "out", "relay", "input")
    return flow


@pytest.fixture
def flow() -> Iterator[Flow]:
    flow = _flow()
    yield flow
    gate = flow.routines["gate"]
    assert isinstance(gate, Gate)
    gate.release.set()
    flow.shutdown(wait=True, timeout=WAIT)


def _job_in(flow: Flow, status: str) -> JobState:
    gate = flow.routines["gate"]
    assert isinstance(gate, Gate)
    if status == "pending":
        return JobState(flow.flow_id)
    if status == "running":
        js = flow.submit("gate", {"value": "g"})
        assert gate.entered.wait(WAIT), "the gate handler never started"
        return js
    if status == "paused":
        js = flow.execute("selfpause")
        assert js.wait_settled(WAIT)
        return js
    if status == "completed":
        return flow.execute("relay", {"value": "x"}, entry_slot="input")
    if status == "failed":
        return flow.execute("boom")
    js = flow.submit("gate", {"value": "g"})
    assert gate.entered.wait(WAIT)
    flow.cancel(js)
    return js


# (status, action) -> the status the job settles in, or None (JobStateError, unchanged).
API_EXPECTED: dict[tuple[str, str], str | None] = {
    ("pending", "pause"): "paused",
    ("pending", "resume"): "completed",
    ("pending", "cancel"): "cancelled",
    ("pending", "retry"): None,
    ("running", "pause"): "paused",
    ("running", "resume"): "completed",
    ("running", "cancel"): "cancelled",
    ("running", "retry"): None,
    ("paused", "pause"): "paused",
    ("paused", "resume"): "completed",
    ("paused", "cancel"): "cancelled",
    ("paused", "retry"): None,
    ("completed", "pause"): "paused",
    ("completed", "resume"): "completed",
    ("completed", "cancel"): "cancelled",
    ("completed", "retry"): None,
    ("failed", "pause"): None,
    ("failed", "resume"): None,
    ("failed", "cancel"): None,
    ("failed", "retry"): "completed",
    ("cancelled", "pause"): None,
    ("cancelled", "resume"): None,
    ("cancelled", "cancel"): "cancelled",
    ("cancelled", "retry"): None,
}


def _call(flow: Flow, action: str, js: JobState) -> None:
    method: Callable[[JobState], Any] = getattr(flow, action)
    method(js)


@pytest.mark.parametrize(("status", "action"), sorted(API_EXPECTED))
def test_flow_api_follows_the_table(flow: Flow, status: str, action: str) -> None:
    """Flow.pause/resume/cancel/retry on a real job in each status: the status it settles
    in, or JobStateError with the job left as it was."""
    expected = API_EXPECTED[(status, action)]
    js = _job_in(flow, status)
    gate = flow.routines["gate"]
    assert isinstance(gate, Gate)
    assert status == js.status
    before = (len(js.pause_points), list(js.pending_tasks), len(js.execution_history))
    errors: list[BaseException] = []

    def act() -> None:
        try:
            _call(flow, action, js)
        except BaseException as exc:
            errors.append(exc)

    # Pause from outside waits for running handlers: act on a thread, then open the gate.
    worker = threading.Thread(target=act, daemon=True)
    worker.start()
    if status == "running" and action == "pause":
        gate.release.set()
    worker.join(WAIT)
    assert not worker.is_alive(), f"{action} of a {status} job never returned"
    gate.release.set()
    if expected is None:
        assert [JobStateError] == [type(e) for e in errors]
        assert (status, before) == (
            js.status,
            (len(js.pause_points), list(js.pending_tasks), len(js.execution_history)),
        )
        return
    assert [] == errors
    assert js.wait_settled(WAIT), f"{js!r} never settled"
    assert expected == js.status
    if expected == "completed" and status == "paused":
        assert [1, 2] == sorted(e["value"] for e in js.shared_log)


# -- the findings ---------------------------------------------------------------------


class Items(Routine):
    """Entry: emits ``count`` items; with ``stop_at``, pauses or waits at that item."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("item", ["n"])

    def fire(self, count: int = 50, **_: Any) -> None:
        for n in range(count):
            self.emit("item", n=n)


class Worker(Routine):
    """Records each item in the shared log; blocks at ``hold_at`` until ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.hold_at: int | None = None
        self.reached = threading.Event()
        self.release = threading.Event()
        self.define_slot("input", handler=self.take)

    def take(self, n: int) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        if n == self.hold_at:
            self.reached.set()
            assert self.release.wait(WAIT), "the test never released the worker"
        ctx.job_state.append_to_shared_log({"n": n})


def _items_flow(strategy: str = "sequential") -> tuple[Flow, Worker]:
    flow = Flow(flow_id="items", execution_strategy=strategy, max_workers=2)
    worker = Worker()
    flow.add_routine(Items(), "items")
    flow.add_routine(worker, "worker")
    flow.connect("items", "item", "worker", "input")
    return flow, worker


def _done(js: JobState) -> list[int]:
    return sorted(e["n"] for e in js.shared_log)


class TestCancelIsFinal:
    @pytest.mark.parametrize("then", ["resume", "pause+resume", "retry"])
    def test_cancelled_job_never_runs_again(self, then: str) -> None:
        """Finding 1: a job cancelled after 20 of 50 items is refused resume, pause and
        retry, stays cancelled, and never runs another item."""
        flow, worker = _items_flow()
        worker.hold_at = 20
        js = flow.submit("items", {"count": 50})
        assert worker.reached.wait(WAIT)
        flow.cancel(js, "enough")
        assert js.wait_for_completion(0), "a cancelled job counts as finished at once"
        worker.release.set()
        assert js.wait_settled(WAIT), "the running handler never returned"
        done = _done(js)
        assert list(range(21)) == done
        for action in then.split("+"):
            with pytest.raises(JobStateError, match="cancelled"):
                _call(flow, action, js)
        assert "cancelled" == js.status
        assert flow.wait_for_completion(WAIT)
        assert done == _done(js)
        flow.shutdown()

    def test_work_emitted_after_a_paused_job_was_cancelled_is_dropped(self) -> None:
        """A handler pauses its own job and, still running, sees it cancelled: what it
        emits afterwards is dropped. The cancelled job keeps no pending or failed task and
        runs nothing more."""

        class PauseThenEmit(Gate):
            def take(self, value: Any = None, **kw: Any) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                ctx.flow.pause(ctx.job_state, reason="ask")
                super().take(value, **kw)

        gate = PauseThenEmit()
        flow = Flow(flow_id="late-cancel")
        flow.add_routine(gate, "gate")
        flow.add_routine(Relay(), "keep")
        flow.connect("gate", "out", "keep", "input")
        try:
            js = flow.submit("gate", {"value": 3})
            assert gate.entered.wait(WAIT), "the gate's handler never started"
            assert "paused" == js.status
            flow.cancel(js, "enough")
            gate.release.set()
            assert gate.returned.wait(WAIT), "the gate's handler never returned"
            assert js.wait_settled(WAIT), f"job still {js.status} with a handler running"
            assert flow.wait_for_completion(WAIT), "the flow still counts the job as running"
        finally:
            flow.shutdown()
        assert ("cancelled", [], [], []) == (
            js.status,
            js.pending_tasks,
            js.failed_tasks,
            js.shared_log,
        )


class TestFailedJobs:
    def test_resume_of_a_failed_job_is_refused_retry_runs_it(self) -> None:
        """Finding 2: an entry that raised fails the job; resume raises JobStateError
        pointing at retry; retry re-runs the failed activation and the job completes."""
        flow = _flow()
        js = flow.execute("boom")
        assert "failed" == js.status
        [task] = js.failed_tasks
        where = (task["slot_routine_id"], task["slot_name"], task["entry"])
        assert ("boom", "trigger", True) == where
        assert {"type": "RuntimeError", "message": "first call fails"} == task["error"]
        with pytest.raises(JobStateError, match="retry"):
            flow.resume(js)
        assert "failed" == js.status
        assert js is flow.retry(js)
        assert js.wait_for_completion(WAIT)
        assert "completed" == js.status
        assert [] == js.failed_tasks
        assert ["again"] == [e["value"] for e in js.shared_log]
        assert ["start", "error", "retry", "out", "completed"] == [
            r.event_name for r in js.get_execution_history("boom")
        ]
        flow.shutdown()

    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_stop_keeps_the_dropped_work_and_retry_delivers_each_item_once(
        self, strategy: str
    ) -> None:
        """Finding 2: a STOP error at item 7 fails the job with the failed item and all
        queued items in failed_tasks; retry runs them in order and each item is done once."""
        flow, _ = _items_flow(strategy)
        failed_once: list[int] = []

        class Picky(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("input", handler=self.take)
                self.set_error_handler(ErrorHandler(strategy=ErrorStrategy.STOP))

            def take(self, n: int) -> None:
                if n == 7 and not failed_once:
                    failed_once.append(n)
                    msg = "bad item 7"
                    raise ValueError(msg)
                ctx = self.get_execution_context()
                assert ctx is not None
                ctx.job_state.append_to_shared_log({"n": n})

        flow = Flow(flow_id="items", execution_strategy=strategy, max_workers=2)
        flow.add_routine(Items(), "items")
        flow.add_routine(Picky(), "worker")
        flow.connect("items", "item", "worker", "input")
        js = flow.execute("items", {"count": 30})
        assert js.wait_for_completion(WAIT)
        assert "failed" == js.status
        kept = [t["data"]["n"] for t in js.failed_tasks]
        assert kept == sorted(kept)
        assert 7 in kept
        assert sorted(set(range(30)) - set(_done(js))) == kept
        doc = js.serialize()
        assert kept == [t["data"]["n"] for t in doc["failed_tasks"]]
        # Retried elsewhere: a new Flow object, the job loaded from its document.
        loaded = JobState()
        loaded.deserialize(doc)
        flow.retry(loaded)
        assert loaded.wait_for_completion(WAIT)
        assert "completed" == loaded.status
        assert list(range(30)) == _done(loaded)
        assert 1 == [r.event_name for r in loaded.execution_history].count("retry")
        flow.shutdown()

    def test_work_emitted_after_the_job_failed_is_kept_for_the_retry(self) -> None:
        """A handler still running when another fails the job (STOP) emits afterwards: its
        work is kept in failed_tasks, not run, and the retry runs it once."""

        class FailsOnce(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.calls = 0
                self.define_slot("input", handler=self.take)
                self.set_error_handler(ErrorHandler(strategy=ErrorStrategy.STOP))

            def take(self, **_: Any) -> None:
                self.calls += 1
                if self.calls == 1:
                    msg = "fails while the gate is held"
                    raise RuntimeError(msg)

        gate = Gate()
        flow = Flow(flow_id="late", execution_strategy="concurrent", max_workers=2)
        flow.add_routine(Emitter(), "src")
        flow.add_routine(gate, "gate")
        flow.add_routine(FailsOnce(), "boom")
        flow.add_routine(Relay(), "keep")
        flow.connect("src", "out", "gate", "input")
        flow.connect("src", "out", "boom", "input")
        flow.connect("gate", "out", "keep", "input")
        try:
            js = flow.submit("src", {"value": 3})
            assert gate.entered.wait(WAIT), "the gate's handler never started"
            wait_until(
                lambda: "error" in [r.event_name for r in js.get_execution_history("boom")],
                WAIT,
                "boom failing the job",
            )
            gate.release.set()
            assert gate.returned.wait(WAIT), "the gate's handler never returned"
            wait_until(lambda: len(js.failed_tasks) == 2, WAIT, "the gate's work kept")
            assert "failed" == js.status
            assert [] == js.shared_log  # the late work did not run
            assert [("boom", "input"), ("keep", "input")] == sorted(
                (t["slot_routine_id"], t["slot_name"]) for t in js.failed_tasks
            )
            flow.retry(js)
            assert js.wait_for_completion(WAIT), f"job still {js.status}"
        finally:
            flow.shutdown()
        assert "completed" == js.status
        assert [("keep", 3)] == [(e["routine"], e["value"]) for e in js.shared_log]

    def test_stop_error_while_pausing_fails_the_job(self) -> None:
        """Finding 3: a handler raises a STOP error while flow.pause() waits for it: the
        job fails, the pause point stays, the routine state keeps the error, resume is
        refused, and retry runs the rest."""
        flow = Flow(flow_id="p3", execution_strategy="concurrent", max_workers=2)
        entered = threading.Event()
        release = threading.Event()
        attempts: list[int] = []

        class Slow(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.fire)
                self.define_event("out", ["n"])
                self.set_error_handler(ErrorHandler(strategy=ErrorStrategy.STOP))

            def fire(self, **_: Any) -> None:
                attempts.append(1)
                self.emit("out", n=1)
                if len(attempts) == 1:
                    entered.set()
                    assert release.wait(WAIT)
                    msg = "late failure"
                    raise RuntimeError(msg)

        flow.add_routine(Slow(), "slow")
        flow.add_routine(Relay(), "relay")
        flow.connect("slow", "out", "relay", "input")
        js = flow.submit("slow")
        assert entered.wait(WAIT)
        pauser = threading.Thread(target=flow.pause, args=(js, "while failing"), daemon=True)
        pauser.start()
        # pause() records its pause point, then waits for the running handler.
        wait_until(lambda: js.pause_points, WAIT, "pause to record its pause point")
        release.set()
        pauser.join(WAIT)
        assert not pauser.is_alive()
        assert js.wait_for_completion(WAIT)
        assert "failed" == js.status
        assert 1 == len(js.pause_points)
        assert "late failure" == js.routine_states["slow"]["error"]
        assert "failed" == js.routine_states["slow"]["status"]
        with pytest.raises(JobStateError):
            flow.resume(js)
        flow.retry(js)
        assert js.wait_for_completion(WAIT)
        assert "completed" == js.status
        assert 2 == len(attempts)
        flow.shutdown()


class TestSettled:
    def test_wait_settled_waits_for_a_handler_that_paused_its_job(self, tmp_path: Path) -> None:
        """Finding 4: a handler pauses its own job and keeps running; neither
        flow.wait_for_completion() nor job_state.wait_settled() return until it is done,
        and the job saved then, loaded and resumed elsewhere, delivers its late emit."""
        flow = Flow(flow_id="p4", execution_strategy="concurrent", max_workers=2)
        paused = threading.Event()
        go_on = threading.Event()

        class PauseThenEmit(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.fire)
                self.define_event("out", ["value"])

            def fire(self, **_: Any) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                self.emit("out", value="early")
                ctx.flow.pause(ctx.job_state, "inside")
                paused.set()
                assert go_on.wait(WAIT)
                self.emit("out", value="late")

        flow.add_routine(PauseThenEmit(), "src")
        flow.add_routine(Relay(), "relay")
        flow.connect("src", "out", "relay", "input")
        js = flow.submit("src")
        assert paused.wait(WAIT)
        assert "paused" == js.status
        assert not flow.wait_for_completion(0.05)
        assert not js.wait_settled(0.05)
        go_on.set()
        assert js.wait_settled(WAIT)
        assert flow.wait_for_completion(WAIT)
        path = tmp_path / "job.json"
        js.save(path)
        loaded = JobState.load(path)
        other = Flow(flow_id="p4", execution_strategy="concurrent", max_workers=2)
        other.add_routine(PauseThenEmit(), "src")
        other.add_routine(Relay(), "relay")
        other.connect("src", "out", "relay", "input")
        other.resume(loaded)
        assert loaded.wait_for_completion(WAIT)
        assert "completed" == loaded.status
        assert ["early", "late"] == sorted(e["value"] for e in loaded.shared_log)
        flow.shutdown()
        other.shutdown()

    def test_wait_settled_times_out_on_a_running_job(self) -> None:
        """wait_settled returns False while the job runs, True once it finished."""
        flow = _flow()
        gate = flow.routines["gate"]
        assert isinstance(gate, Gate)
        js = flow.submit("gate")
        assert gate.entered.wait(WAIT)
        assert not js.wait_settled(0.01)
        gate.release.set()
        assert js.wait_settled(WAIT)
        assert "completed" == js.status
        flow.shutdown()


class Outputs(Routine):
    """Sends two outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)

    def fire(self, **_: Any) -> None:
        self.send_output("result", n=1)
        self.send_output("result", n=2)


class TestOutputHandlerFailures:
    @pytest.mark.parametrize("entry", [True, False])
    def test_never_fail_a_job_with_warnings_as_errors(self, entry: bool) -> None:
        """Finding 5: with warnings turned into errors, an output handler that raises
        does not fail the job; every output is in output_log; the failures are counted."""
        flow = Flow(flow_id="out")
        flow.add_routine(Outputs(), "out")
        flow.add_routine(Relay(), "relay")

        def broken(*_: Any) -> None:
            msg = "handler down"
            raise OSError(msg)

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            js = flow.execute("out", output_handler=CallbackOutputHandler(broken))
        assert "completed" == js.status
        assert [1, 2] == [e["data"]["n"] for e in js.output_log]
        assert 2 == js.output_handler_failures
        assert [] == js.errors
        flow.shutdown()

    def test_the_warning_is_issued_otherwise(self) -> None:
        """With the default filters the RoutiluxWarning is issued, once per failure."""
        flow = Flow(flow_id="out")
        flow.add_routine(Outputs(), "out")

        def broken(*_: Any) -> None:
            msg = "handler down"
            raise OSError(msg)

        with pytest.warns(RoutiluxWarning, match="handler down") as seen:
            js = flow.execute("out", output_handler=CallbackOutputHandler(broken))
        assert 2 == len([w for w in seen if issubclass(w.category, RoutiluxWarning)])
        assert 2 == js.output_handler_failures
        loaded = JobState()
        loaded.deserialize(js.serialize())
        assert 2 == loaded.output_handler_failures
        flow.shutdown()


class TestErrorsAreLoud:
    def test_downstream_error_is_listed(self) -> None:
        """Finding 6: a downstream error leaves the job completed, but job_state.errors
        lists it (routine, slot, type, message, attempt, strategy) and the routine state
        says failed; the record survives serialization."""

        class Fails(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("input", handler=self.take)

            def take(self, value: Any = None, **_: Any) -> None:
                msg = f"cannot take {value!r}"
                raise TypeError(msg)

        flow = Flow(flow_id="loud")
        chain(flow, 0)
        flow.add_routine(Fails(), "bad")
        flow.connect("e", "out", "bad", "input")
        js = flow.execute("e", {"value": 3})
        assert "completed" == js.status
        [error] = js.errors
        assert isinstance(error, ErrorRecord)
        assert ("bad", "input", "TypeError", "cannot take 3", 1, "continue") == (
            error.routine_id,
            error.slot,
            error.error_type,
            error.message,
            error.attempt,
            error.strategy,
        )
        assert "TypeError" in error.traceback
        assert "failed" == js.routine_states["bad"]["status"]
        js.errors.clear()  # a copy: the job keeps its record
        assert 1 == len(js.errors)
        loaded = JobState()
        loaded.deserialize(js.serialize())
        assert js.errors == loaded.errors
        flow.shutdown()

    def test_retried_errors_say_so(self) -> None:
        """An error that was retried and then succeeded is listed with strategy retry."""
        calls: list[int] = []

        class Flaky(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("input", handler=self.take)
                self.set_error_handler(
                    ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=2, retry_delay=0)
                )

            def take(self, **_: Any) -> None:
                calls.append(1)
                if len(calls) == 1:
                    msg = "once"
                    raise RuntimeError(msg)

        flow = Flow(flow_id="retry")
        chain(flow, 0)
        flow.add_routine(Flaky(), "flaky")
        flow.connect("e", "out", "flaky", "input")
        js = flow.execute("e", {"value": 1})
        assert "completed" == js.status
        assert [("flaky", 1, "retry")] == [(e.routine_id, e.attempt, e.strategy) for e in js.errors]
        assert "completed" == js.routine_states["flaky"]["status"]
        flow.shutdown()
