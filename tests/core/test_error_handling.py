"""
Error strategies (STOP, CONTINUE, RETRY, SKIP) for entry and downstream routines.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from helpers import Emitter

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine
from routilux.exceptions import ConfigurationError


class Boom(Routine):
    """Fails ``fail_times`` times per job (counted in the job), then emits ``out``."""

    def __init__(self, fail_times: int = 10**9, error: type[Exception] = RuntimeError) -> None:
        super().__init__()
        self.fail_times = fail_times
        self.error = error
        self.define_slot("trigger", handler=self.run)
        self.define_slot("input", handler=self.run)
        self.define_event("out", ["value"])

    def run(self, value: Any = None, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        calls = ctx.job_state.modify_shared_data(f"calls:{ctx.routine_id}", lambda n: n + 1, 0)
        if calls <= self.fail_times:
            raise self.error(f"boom {calls}")
        self.emit("out", value=value)


class Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.modify_shared_data("sink", lambda v: [*v, value], [])


def build(where: str, strategy: str, boom: Boom) -> Flow:
    """Boom as the entry routine, or downstream of an Emitter; a Sink after it."""
    flow = Flow(execution_strategy=strategy, max_workers=3)
    if where == "entry":
        flow.add_routine(boom, "boom")
        entry = "boom"
    else:
        flow.add_routine(Emitter(), "e")
        flow.add_routine(boom, "boom")
        flow.connect("e", "out", "boom", "input")
        entry = "e"
    flow.add_routine(Sink(), "sink")
    flow.connect("boom", "out", "sink", "input")
    flow.entry = entry  # type: ignore[attr-defined]  # test bookkeeping
    return flow


STRATEGIES = ["sequential", "concurrent"]
WHERE = ["entry", "downstream"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(
    ("where", "status", "state"),
    [("entry", "failed", "failed"), ("downstream", "completed", "failed")],
)
def test_default_without_handler(strategy: str, where: str, status: str, state: str) -> None:
    """No handler: an entry error fails the job; a downstream error is recorded, job goes on."""
    flow = build(where, strategy, Boom())
    js = flow.execute(flow.entry, {"value": 1})  # type: ignore[attr-defined]
    assert status == js.status
    assert state == js.routine_states["boom"]["status"]
    errors = [r for r in js.execution_history if r.event_name == "error"]
    assert len(errors) == 1 and errors[0].routine_id == "boom"
    data = errors[0].data
    assert (data["error_type"], data["error"], data["attempt"]) == ("RuntimeError", "boom 1", 1)
    assert "Traceback" in data["traceback"] and "boom 1" in data["traceback"]
    flow.shutdown()


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("level", ["routine", "flow"])
@pytest.mark.parametrize(
    ("error_strategy", "status", "state"),
    [
        (ErrorStrategy.STOP, "failed", "failed"),
        (ErrorStrategy.CONTINUE, "completed", "error_continued"),
        (ErrorStrategy.SKIP, "completed", "skipped"),
    ],
)
def test_stop_continue_skip(
    strategy: str, where: str, level: str, error_strategy: ErrorStrategy, status: str, state: str
) -> None:
    """A configured handler applies the same way to entry and downstream routines."""
    boom = Boom()
    flow = build(where, strategy, boom)
    handler = ErrorHandler(strategy=error_strategy)
    if level == "routine":
        boom.set_error_handler(handler)
    else:
        flow.set_error_handler(handler)
    js = flow.execute(flow.entry, {"value": 1})  # type: ignore[attr-defined]
    assert status == js.status
    assert state == js.routine_states["boom"]["status"]
    assert "sink" not in js.shared_data
    if error_strategy is ErrorStrategy.CONTINUE:
        events = [r.event_name for r in js.get_execution_history("boom")]
        assert events.count("error_continued") == 1
    flow.shutdown()


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("where", WHERE)
def test_retry_then_success_delivers_once(strategy: str, where: str) -> None:
    """Fail twice, succeed on the third call: completed, retry_count 2, one delivery."""
    boom = Boom(fail_times=2)
    boom.set_error_handler(ErrorHandler("retry", max_retries=3, retry_delay=0.01))
    flow = build(where, strategy, boom)
    js = flow.execute(flow.entry, {"value": 7})  # type: ignore[attr-defined]
    assert js.status == "completed"
    assert js.shared_data["calls:boom"] == 3
    assert js.shared_data["sink"] == [7]
    state = js.routine_states["boom"]
    assert (state["status"], state["retry_count"]) == ("completed", 2)
    history = js.get_execution_history("boom")
    attempts = [r.data["attempt"] for r in history if r.event_name == "error"]
    assert attempts == [1, 2]
    flow.shutdown()


@pytest.mark.parametrize("handler", [None, "skip", "continue"])
def test_success_after_an_error_clears_the_error_from_the_state(handler: str | None) -> None:
    """A downstream routine that failed once, then succeeded: its state is completed without
    the error (the history keeps it); while the error was its last word, the state said so.
    (Sequential: the state tells the activation that finished last.)"""
    boom = Boom(fail_times=1)
    if handler is not None:
        boom.set_error_handler(ErrorHandler(handler))
    flow = build("downstream", "sequential", boom)
    js = flow.execute("e", {"items": [1]})
    failed = {"skip": "skipped", "continue": "error_continued", None: "failed"}[handler]
    assert (js.routine_states["boom"]["status"], js.routine_states["boom"]["error"]) == (
        failed,
        "boom 1",
    )
    js = flow.execute("e", {"items": [1, 2]})
    state = js.routine_states["boom"]
    assert (state["status"], state["activation_count"]) == ("completed", 2)
    assert not {"error", "error_type", "error_time"} & set(state)
    assert ["boom 1"] == [
        r.data["error"] for r in js.get_execution_history("boom") if r.event_name == "error"
    ]
    assert js.shared_data["sink"] == [2]
    flow.shutdown()


def test_framework_keys_are_merged_into_a_state_the_handler_replaced() -> None:
    """A handler's update_routine_state replaces its state; the framework's keys come back,
    start_time included, and the handler's keys stay."""

    class Marks(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.go)

        def go(self, **_: Any) -> None:
            ctx = self.get_execution_context()
            assert ctx is not None
            ctx.job_state.update_routine_state(ctx.routine_id, {"processed": True})

    flow = Flow()
    flow.add_routine(Marks(), "m")
    state = flow.execute("m").routine_states["m"]
    assert state["processed"] is True
    assert state["status"] == "completed"
    assert {"start_time", "end_time", "execution_time", "activation_count"} <= set(state)
    assert state["start_time"] <= state["end_time"]
    flow.shutdown()


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(
    ("where", "critical", "status"),
    [
        ("entry", False, "failed"),
        ("entry", True, "failed"),
        ("downstream", False, "completed"),
        ("downstream", True, "failed"),
    ],
)
def test_retry_exhausted(strategy: str, where: str, critical: bool, status: str) -> None:
    """Always failing: N+1 calls; then the default for where it is, or failed if critical."""
    boom = Boom()
    handler = ErrorHandler("retry", max_retries=2, retry_delay=0.0, is_critical=critical)
    boom.set_error_handler(handler)
    flow = build(where, strategy, boom)
    js = flow.execute(flow.entry)  # type: ignore[attr-defined]
    assert status == js.status
    assert js.shared_data["calls:boom"] == 3
    assert js.routine_states["boom"]["status"] == "failed"
    assert handler.retry_count == 2
    flow.shutdown()


@pytest.mark.parametrize("where", WHERE)
def test_non_retryable_error_not_retried(where: str) -> None:
    """Only retryable_exceptions are retried."""
    boom = Boom(error=KeyError)
    handler = ErrorHandler("retry", max_retries=3, retry_delay=0, retryable_exceptions=(OSError,))
    boom.set_error_handler(handler)
    flow = build(where, "sequential", boom)
    js = flow.execute(flow.entry)  # type: ignore[attr-defined]
    assert js.shared_data["calls:boom"] == 1
    assert handler.retry_count == 0
    assert js.status == ("failed" if where == "entry" else "completed")


def test_retry_delays_follow_backoff() -> None:
    """Delays are retry_delay * backoff ** n, measured between attempts."""
    import time

    stamps: list[float] = []

    class Timed(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.run)

        def run(self, **_: Any) -> None:
            stamps.append(time.monotonic())
            if len(stamps) < 3:
                raise RuntimeError("again")

    flow = Flow()
    r = Timed()
    r.set_error_handler(ErrorHandler("retry", max_retries=3, retry_delay=0.1, retry_backoff=2))
    flow.add_routine(r, "t")
    assert flow.execute("t").status == "completed"
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert 0.09 <= gaps[0] and 0.19 <= gaps[1]  # at least delay * backoff ** n, n = 0, 1
    flow.shutdown()


def test_two_jobs_sharing_a_retrying_routine_get_full_budget() -> None:
    """Retry counters are per job: two concurrent jobs both get max_retries."""
    boom = Boom(fail_times=2)
    boom.set_error_handler(ErrorHandler("retry", max_retries=2, retry_delay=0.01))
    flow = build("entry", "concurrent", boom)
    jobs = [flow.submit("boom", {"value": i}) for i in range(2)]
    for js in jobs:
        assert js.wait_for_completion(10)
        assert js.status == "completed"
        assert js.shared_data["calls:boom"] == 3
    flow.shutdown()


def test_waiting_retry_does_not_hold_back_other_jobs() -> None:
    """With one worker, a job waiting 1 s between retries lets another job complete first."""
    order: list[str] = []
    done = threading.Event()

    class Slow(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.run)

        def run(self, name: str = "", **_: Any) -> None:
            ctx = self.get_execution_context()
            assert ctx is not None
            order.append(name)
            if name == "retrying" and order.count("retrying") == 1:
                raise RuntimeError("first attempt fails")
            if name == "quick":
                done.set()

    flow = Flow(execution_strategy="concurrent", max_workers=1)
    slow = Slow()
    slow.set_error_handler(ErrorHandler("retry", max_retries=1, retry_delay=1.0))
    flow.add_routine(slow, "s")
    first = flow.submit("s", {"name": "retrying"})
    while "retrying" not in order:
        assert first.wait_for_completion(0.01) is False
    second = flow.submit("s", {"name": "quick"})
    assert second.wait_for_completion(10) and done.is_set()
    assert first.status == "running"
    assert first.wait_for_completion(10)
    assert ["retrying", "quick", "retrying"] == order
    assert first.status == "completed"
    flow.shutdown()


def test_routine_handler_beats_flow_handler() -> None:
    """A routine CONTINUE handler wins over a flow STOP handler."""
    boom = Boom()
    boom.set_as_optional()
    flow = build("downstream", "sequential", boom)
    flow.set_error_handler(ErrorHandler("stop"))
    assert flow.execute("e").status == "completed"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"retry_delay": -0.1}, "retry_delay"),
        ({"retry_backoff": 0.5}, "retry_backoff"),
        ({"strategy": "explode"}, "strategy"),
        ({"strategy": 3}, "strategy"),
        ({"retryable_exceptions": (int,)}, "retryable_exceptions"),
    ],
)
def test_invalid_settings(kwargs: dict[str, Any], name: str) -> None:
    """Bad settings raise a ConfigurationError (a ValueError) naming the setting."""
    with pytest.raises(ConfigurationError) as info:
        ErrorHandler(**kwargs)
    assert isinstance(info.value, ValueError) and name == info.value.name


class TestErrorHandlerSurface:
    def test_defaults(self) -> None:
        """Defaults of the original: STOP, 3 retries, 1 s, x2, all exceptions, not critical."""
        h = ErrorHandler()
        assert (h.strategy, h.max_retries, h.retry_delay, h.retry_backoff) == (
            ErrorStrategy.STOP,
            3,
            1.0,
            2.0,
        )
        assert h.retryable_exceptions == (Exception,) and h.is_critical is False

    def test_string_strategy(self) -> None:
        """A strategy may be given by value."""
        assert ErrorHandler("retry").strategy is ErrorStrategy.RETRY

    def test_handle_error_retry_counts_backs_off_and_resets(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """handle_error counts retries and sleeps delay * backoff ** (count - 1) in the calling
        thread for each one it grants (SPEC 12.3), not once they are used up; reset clears."""
        slept: list[float] = []
        monkeypatch.setattr("routilux.model._error_handler.time.sleep", slept.append)
        h = ErrorHandler("retry", max_retries=2, retry_delay=0.5, retry_backoff=3.0)
        assert h.handle_error(ValueError(), None, "r", None) is True
        assert h.handle_error(ValueError(), None, "r", None) is True
        assert h.retry_count == 2
        assert h.handle_error(ValueError(), None, "r", None) is True  # not critical
        assert slept == [0.5, 1.5]
        h.reset()
        assert h.retry_count == 0

    @pytest.mark.parametrize(
        ("strategy", "expected"),
        [("stop", False), ("continue", True), ("skip", True)],
    )
    def test_handle_error_results(self, strategy: str, expected: bool) -> None:
        """STOP says stop; CONTINUE and SKIP say go on."""
        assert expected == ErrorHandler(strategy).handle_error(ValueError("x"), None, "r", None)

    def test_set_as_critical(self) -> None:
        """set_as_critical installs a critical RETRY handler."""
        r = Routine()
        r.set_as_critical(max_retries=5, retry_delay=0.5, retry_backoff=3)
        h = r.get_error_handler()
        assert h is not None
        assert (h.strategy, h.max_retries, h.retry_delay, h.retry_backoff, h.is_critical) == (
            ErrorStrategy.RETRY,
            5,
            0.5,
            3,
            True,
        )

    @pytest.mark.parametrize("strategy", [None, ErrorStrategy.SKIP])
    def test_set_as_optional(self, strategy: ErrorStrategy | None) -> None:
        """set_as_optional installs CONTINUE (or the given strategy), not critical."""
        r = Routine()
        r.set_as_optional(strategy)
        h = r.get_error_handler()
        assert h is not None and h.strategy is (strategy or ErrorStrategy.CONTINUE)
        assert h.is_critical is False


@pytest.mark.parametrize(
    ("strategy", "error", "made", "expected"),
    [
        ("retry", OSError(), 0, True),
        ("retry", OSError(), 2, False),
        ("retry", KeyError(), 0, False),
        ("continue", OSError(), 0, False),
    ],
)
def test_should_retry(strategy: str, error: Exception, made: int, expected: bool) -> None:
    """should_retry: RETRY, a retryable error and retries left."""
    handler = ErrorHandler(strategy, max_retries=2, retryable_exceptions=(OSError,))
    assert expected == handler.should_retry(error, made)
    assert 0.5 == ErrorHandler("retry", retry_delay=0.125, retry_backoff=2).retry_delay_for(2)
