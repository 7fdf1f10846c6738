"""Retries, timeouts and deadlines on the fake clock: a minute of back-off in milliseconds."""

import threading
import time

from routilux import ErrorHandler, ErrorStrategy, Routine


class Flaky(Routine):
    """Fails its first call, then works: RETRY waits a minute before the second."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.define_slot("trigger", self.go)
        self.set_error_handler(
            ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=2, retry_delay=60)
        )

    def go(self, **_):
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("not yet")


def test_retry_after_a_minute(routilux_flow, routilux_clock):
    started = time.monotonic()
    flow = routilux_flow("flaky")
    flaky = Flaky()
    flow.add_routine(flaky, "flaky")
    job = flow.submit("flaky")
    routilux_clock.wait_armed()  # the job's worker armed the back-off of the first failure
    routilux_clock.advance(59)
    assert flaky.calls == 1
    routilux_clock.advance(1)  # the minute has passed: the retry runs
    assert job.wait_for_completion(timeout=5)
    assert job.status == "completed"
    assert flaky.calls == 2
    assert time.monotonic() - started < 1  # not a minute


class Hangs(Routine):
    """A sync handler that hangs until the test lets it go, with a 30 s timeout."""

    def __init__(self):
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()
        self.define_slot("trigger", self.go, timeout=30)

    def go(self, **_):
        self.started.set()
        self.release.wait(5)


def test_a_timeout_without_waiting_for_it(routilux_flow, routilux_clock):
    flow = routilux_flow("hangs")
    hangs = Hangs()
    flow.add_routine(hangs, "hangs")
    job = flow.submit("hangs")
    assert hangs.started.wait(5)
    routilux_clock.advance(30)  # the timeout fails the entry's activation, so the job
    assert [e.error_type for e in job.errors] == ["ActivationTimeout"]
    hangs.release.set()  # the handler returns late: its result is discarded
    assert job.wait_for_completion(timeout=5)
    assert job.status == "failed"
