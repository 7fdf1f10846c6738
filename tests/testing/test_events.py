"""
``routilux_events`` (RecordedEvents): every stream event of the jobs a test starts, with
filters and a bounded wait.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from routilux import Flow, Routine
from routilux.testing import RecordedEvents


pytest_plugins = ["pytester"]


class Count(Routine):
    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.gate = gate
        self.define_slot("go", self.go)
        self.define_event("n", ["n"])

    def go(self, upto: int = 2, **_: Any) -> None:
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        for n in range(upto):
            self.emit("n", n=n)


@pytest.fixture
def flow() -> Any:
    made = Flow("count")
    yield made
    made.shutdown()


def test_records_the_jobs_started_while_recording(flow: Flow) -> None:
    """Only jobs started between start() and stop() are recorded, in booking order."""
    flow.add_routine(Count(), "c")
    before = flow.execute("c", {"upto": 1})
    events = RecordedEvents()
    events.start()
    try:
        job = flow.execute("c", {"upto": 2})
    finally:
        events.stop()
    after = flow.execute("c", {"upto": 1})
    assert before.status == job.status == after.status == "completed"
    assert {e.job_id for e in events} == {job.job_id}
    assert events.kinds(job.job_id) == [
        "job_started",
        "activation_started",
        "emitted",
        "emitted",
        "job_finished",
    ]
    assert [e.data["data"] for e in events.filter("emitted", event="n")] == [{"n": 0}, {"n": 1}]
    assert [e.data["data"] for e in events.filter("emitted", n=1)] == [{"n": 1}]
    ends = events.filter(["job_started", "job_finished"])
    assert [e.kind for e in ends] == ["job_started", "job_finished"]
    assert events[-1].job_state is job


def test_wait_for_an_event_of_a_job_in_the_background(flow: Flow) -> None:
    """wait_for returns the first matching event once the job books it."""
    gate = threading.Event()
    flow.add_routine(Count(gate), "c")
    events = RecordedEvents()
    events.start()
    try:
        job = flow.submit("c", {"upto": 3})
        assert events.filter("emitted") == []
        gate.set()
        second = events.wait_for("emitted", n=1, timeout=10)
        assert second.data["data"] == {"n": 1}
        assert job.wait_for_completion(10), f"the job is still {job.status}"
    finally:
        events.stop()


def test_wait_for_fails_naming_what_did_not_come(flow: Flow) -> None:
    """A wait that times out fails with the criteria and the events recorded."""
    flow.add_routine(Count(), "c")
    events = RecordedEvents()
    events.start()
    try:
        flow.execute("c", {"upto": 1})
        with pytest.raises(AssertionError) as caught:
            events.wait_for("error", routine_id="c", timeout=0.01)
    finally:
        events.stop()
    message = str(caught.value)
    assert "no event with kind='error', routine_id='c' within 0.01 s; recorded:" in message
    assert "emitted c.n {'n': 0}" in message
    events.clear()
    assert len(events) == 0


def test_the_fixture_in_a_users_suite(pytester: pytest.Pytester) -> None:
    """routilux_events records a user's jobs and stops at the end of the test."""
    pytester.makepyfile(
        test_user="""
        from routilux import Routine
        from routilux.plugins._manager import default_plugin_manager


        class Hello(Routine):
            def __init__(self):
                super().__init__()
                self.define_slot("go", self.go)
                self.define_event("said", ["text"])

            def go(self, **_):
                self.emit("said", text="hi")


        def test_events(routilux_flow, routilux_events):
            flow = routilux_flow("hello")
            flow.add_routine(Hello(), "h")
            job = flow.execute("h")
            (said,) = routilux_events.filter("emitted", text="hi")
            assert said.routine_id == "h" and said.job_id == job.job_id
            routilux_events.wait_for("error", timeout=0.01)


        def test_no_recorder_left():
            assert "routilux_events" not in repr(default_plugin_manager())
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    assert "no event with kind='error' within 0.01 s; recorded:" in result.stdout.str()
