"""
Slot timeouts and job deadlines, on a fake clock (routilux_clock): nothing here waits for
real time but for events the test controls, each with a bounded wait.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine
from routilux.exceptions import ConfigurationError, DeserializationError
from routilux.model._slot import timeout_of
from routilux.testing import FakeClock


WAIT = 5.0


class Stuck(Routine):
    """The first call blocks until the test releases it, then emits ``out``; later ones
    emit at once."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.define_slot("trigger", handler=self.run, timeout=5)
        self.define_event("out", ["value"])

    def run(self, **_: Any) -> None:
        self.calls += 1
        call = self.calls
        if call == 1:
            self.started.set()
            assert self.release.wait(WAIT), "the test never released the first call"
        self.emit("out", value=call)


class Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.modify_shared_data("sink", lambda v: [*v, value], [])


@pytest.fixture
def flow(routilux_clock: FakeClock) -> Any:
    with Flow(execution_strategy="concurrent", max_workers=3) as made:
        yield made


def test_sync_timeout_retries_and_discards_the_late_result(
    flow: Flow, routilux_clock: FakeClock
) -> None:
    stuck = Stuck()
    flow.add_routine(stuck, "stuck")
    flow.add_routine(Sink(), "sink")
    flow.connect("stuck", "out", "sink", "input")
    stuck.set_error_handler(ErrorHandler(strategy=ErrorStrategy.RETRY, retry_delay=1))
    job = flow.submit("stuck")
    assert stuck.started.wait(WAIT), "the first call never started"
    routilux_clock.advance(4.9)
    assert [] == job.errors, "timed out before its 5 s"
    routilux_clock.advance(0.1)  # the timeout: RETRY arms a 1 s back-off
    assert ["ActivationTimeout"] == [e.error_type for e in job.errors]
    assert (
        "the handler of slot 'stuck.trigger' ran past its timeout of 5 s" == job.errors[0].message
    )
    assert "retry" == job.errors[0].strategy
    routilux_clock.advance(1)  # the second attempt runs on another worker
    stuck.release.set()  # the first call returns late: its emit and result are discarded
    assert job.wait_for_completion(timeout=WAIT), "the job never finished"
    assert "completed" == job.status
    assert [2] == job.shared_data["sink"]
    late = [r for r in job.execution_history if r.event_name == "late_result_discarded"]
    assert 1 == len(late)
    assert {"slot": "trigger", "attempt": 1, "timeout": 5.0, "emits_discarded": 1} == late[0].data


def test_async_timeout_cancels_the_coroutine(flow: Flow, routilux_clock: FakeClock) -> None:
    seen: list[str] = []

    class Hang(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.run)
            self.set_config(slot_timeout=2)  # the routine-wide default

        async def run(self, **_: Any) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

    flow.add_routine(Hang(), "hang")
    job = flow.submit("hang")
    routilux_clock.wait_armed()
    routilux_clock.advance(2)
    assert job.wait_for_completion(timeout=WAIT), "the job never finished"
    assert "failed" == job.status
    assert ["cancelled"] == seen
    assert ["ActivationTimeout"] == [e.error_type for e in job.errors]


def test_deadline_keeps_queued_work_for_retry(routilux_clock: FakeClock) -> None:
    release = threading.Event()
    started = threading.Event()

    class Fan(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot(
                "trigger", handler=lambda **_: [self.emit("out", value=i) for i in (1, 2, 3)]
            )
            self.define_event("out", ["value"])

    class Work(Sink):
        def take(self, value: Any = None, **kw: Any) -> None:
            if value == 1:
                started.set()
                assert release.wait(WAIT), "the test never released the first item"
            super().take(value, **kw)

    with Flow(execution_strategy="sequential") as flow:
        flow.add_routine(Fan(), "fan")
        flow.add_routine(Work(), "work")
        flow.connect("fan", "out", "work", "input")
        job = flow.submit("fan", deadline=10)
        assert started.wait(WAIT), "the first item never started"
        routilux_clock.advance(10)
        assert "failed" == job.status
        release.set()
        assert job.wait_for_completion(timeout=WAIT), "the failed job never settled"
        assert ["JobDeadlineExceeded"] == [e.error_type for e in job.errors]
        assert [2, 3] == [t["data"]["value"] for t in job.failed_tasks]
        flow.retry(job)
        assert job.wait_for_completion(timeout=WAIT), "the retry never finished"
        assert "completed" == job.status
        assert [1, 2, 3] == job.shared_data["sink"]


def test_a_job_done_in_time_leaves_no_deadline(flow: Flow, routilux_clock: FakeClock) -> None:
    flow.add_routine(Sink(), "sink")
    job = flow.execute("sink", {"value": 1}, entry_slot="input", deadline=60)
    assert "completed" == job.status
    assert 0 == routilux_clock.pending
    routilux_clock.advance(60)
    assert "completed" == job.status


def test_bad_timeouts_are_refused() -> None:
    routine = Routine()
    with pytest.raises(ConfigurationError, match="timeout of"):
        routine.define_slot("a", timeout=0)
    with Flow() as flow:
        flow.add_routine(Sink(), "sink")
        with pytest.raises(ConfigurationError, match="deadline"):
            flow.execute("sink", entry_slot="input", deadline=-1)
    routine.set_config(slot_timeout="soon")
    slot = routine.define_slot("b")
    with pytest.raises(ConfigurationError, match="'slot_timeout' config"):
        timeout_of(slot)


def test_flow_documents_carry_timeouts(tmp_path: Any) -> None:
    from routilux.store import load_flow_file

    flow = Flow("t")
    stuck = Stuck()  # its constructor gives 5 s
    trigger = stuck.get_slot("trigger")
    assert trigger is not None
    trigger.timeout = 7
    flow.add_routine(stuck, "stuck")
    doc = flow.serialize()
    assert 7.0 == doc["routines"]["stuck"]["slots"][0]["timeout"]
    again = Flow()
    again.deserialize(doc)
    slot = again.routines["stuck"].get_slot("trigger")
    assert slot is not None and 7.0 == slot.timeout
    (tmp_path / "stuck.json").write_text(json.dumps(doc))
    slot = load_flow_file(tmp_path / "stuck.json").routines["stuck"].get_slot("trigger")
    assert slot is not None and 7.0 == slot.timeout

    path = tmp_path / "flow.json"
    path.write_text(
        '{"format": "routilux.flow", "version": 1, "flow_id": "f", "connections": [],'
        ' "routines": {"clip": {"type": "TextClipper", "config": {"slot_timeout": 3}}}}'
    )
    clip = load_flow_file(path).routines["clip"]
    assert all(3.0 == timeout_of(s) for s in clip.get_slots().values())

    doc["routines"]["stuck"]["slots"][0]["timeout"] = -1
    with pytest.raises(DeserializationError) as info:
        Flow().deserialize(doc)
    assert "routines.stuck.slots[0].timeout" == info.value.path


class Feed(Routine):
    """Entry: emits ``item`` for 0, 1 and 2."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("item", ["i"])

    def go(self, **_: Any) -> None:
        for i in range(3):
            self.emit("item", i=i)


class Hold(Routine):
    """Blocks on item 0 until the test releases it (see :data:`HOLD`)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, i: int = 0, **_: Any) -> None:
        if i == 0:
            HOLD["started"].set()
            assert HOLD["release"].wait(WAIT), "the test never released item 0"


HOLD: dict[str, threading.Event] = {}


@pytest.fixture
def held_flow_file(tmp_path: Any) -> Any:
    from routilux.registry import register_routine, unregister_routine

    HOLD.update(started=threading.Event(), release=threading.Event())
    register_routine(Feed, name="tests.timeouts.Feed")
    register_routine(Hold, name="tests.timeouts.Hold")
    flow = Flow("held", execution_strategy="sequential")
    flow.add_routine(Feed(), "feed")
    flow.add_routine(Hold(), "hold")
    flow.connect("feed", "item", "hold", "input")
    path = tmp_path / "held.json"
    path.write_text(json.dumps(flow.serialize()))
    yield path
    unregister_routine("tests.timeouts.Feed")
    unregister_routine("tests.timeouts.Hold")


def test_cli_deadline_fails_the_job_and_retry_goes_on(
    held_flow_file: Any, tmp_path: Any, routilux_clock: FakeClock, capsys: Any
) -> None:
    from routilux.cli import main
    from routilux.store import SqliteJobStore

    store = str(tmp_path / "jobs.db")

    def expire() -> None:
        # The job runs on the command's workers: once item 0 holds one, the deadline passes.
        assert HOLD["started"].wait(WAIT), "item 0 never started"
        routilux_clock.advance(30)
        HOLD["release"].set()

    helper = threading.Thread(target=expire)
    helper.start()
    run = ["run", str(held_flow_file), "--store", store, "--deadline", "30", "-q"]
    code = main([*run, "--job-id", "j1"])
    helper.join(WAIT)
    assert 1 == code, capsys.readouterr()
    with SqliteJobStore(store) as s:
        failed = s.load_job("j1").state
    assert failed is not None and "failed" == failed["status"]
    assert [1, 2] == [t["data"]["i"] for t in failed["failed_tasks"]]
    assert 0 == main(["retry", "j1", "--store", store, "--deadline", "30", "-q"])
    assert 0 == routilux_clock.pending  # the finished retry left no deadline armed
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # argparse's usage error
        main([*run, "--deadline", "0"])
    assert 2 == exited.value.code
    assert "expected a number of seconds > 0, got '0'" in capsys.readouterr().err


def test_a_flow_made_before_the_fake_clock_obeys_it() -> None:
    """A flow whose timer ran on the real clock (as run_job's shared flows may) arms its
    timers on the fake clock installed later, and on the real one again after it."""
    handler = ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=5, retry_delay=0)

    class Flaky(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0
            self.define_slot("trigger", handler=self.go)
            self.set_error_handler(handler)

        def go(self, **_: Any) -> None:
            self.calls += 1
            if self.calls % 2:
                raise ConnectionError("odd call")

    with Flow(execution_strategy="concurrent") as flow:
        flaky = Flaky()
        flow.add_routine(flaky, "flaky")
        assert "completed" == flow.execute("flaky", timeout=WAIT).status  # a real timer
        handler.retry_delay = 60
        with FakeClock().installed() as clock:
            job = flow.submit("flaky")
            clock.wait_armed()
            assert 3 == flaky.calls
            clock.advance(60)
            assert job.wait_for_completion(timeout=WAIT), "the retry never ran"
        assert 4 == flaky.calls
        handler.retry_delay = 0
        assert "completed" == flow.execute("flaky", timeout=WAIT).status  # real again
        assert 6 == flaky.calls


def test_a_handler_done_in_time_leaves_no_timer(flow: Flow, routilux_clock: FakeClock) -> None:
    quick = Routine()
    seen: list[int] = []
    quick.define_slot("trigger", handler=lambda value=0, **_: seen.append(value), timeout=1)
    flow.add_routine(quick, "quick")
    job = flow.execute("quick", {"value": 7}, timeout=WAIT)
    assert "completed" == job.status
    assert [7] == seen
    assert 0 == routilux_clock.pending  # its timeout was cancelled when it returned
    routilux_clock.advance(1)
    assert [] == job.errors


def test_fake_clock_runs_what_falls_due_in_order() -> None:
    clock = FakeClock()
    timer = clock.timer("t")
    ran: list[tuple[str, float]] = []

    def later(name: str, delay: float = 0.0) -> Any:
        def call(_handle: int) -> None:
            ran.append((name, clock.monotonic()))
            if delay:
                timer.call_later(delay, later(f"{name}+", 0.0))

        return call

    timer.call_later(3, later("c"))
    timer.call_later(1, later("a", 1))  # arms a+ at 2, within the window
    timer.cancel(timer.call_later(2.5, later("cancelled")))
    assert 1.0 == clock.next_due()
    assert 2 == clock.advance(2.5)
    assert [("a", 1.0), ("a+", 2.0)] == ran
    assert 2.5 == clock.monotonic()
    assert 1_767_225_602.5 == clock.time()
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)
    timer.shutdown()  # drops "c"
    assert 0 == clock.pending
    assert 0 == clock.advance(10)
    assert [("a", 1.0), ("a+", 2.0)] == ran


def test_thread_timer_wakes_for_an_earlier_entry_and_drops_cancelled_ones() -> None:
    from routilux.engine._clock import ThreadTimer

    timer = ThreadTimer("test-timer")
    fired = threading.Event()
    try:
        later = [timer.call_later(60, lambda _h: None) for _ in range(200)]
        timer.call_later(0.001, lambda _h: fired.set())  # its thread waits for 60 s now
        assert fired.wait(WAIT), "the timer slept past an entry armed earlier than the rest"
        for handle in later:
            timer.cancel(handle)
        assert len(timer._heap) <= 64  # cancelled entries do not wait for their due time
    finally:
        timer.shutdown()
