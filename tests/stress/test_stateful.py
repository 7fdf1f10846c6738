"""
Stateful property test: any interleaving of submit, pause, resume, cancel,
serialize-and-reload and wait on a set of jobs keeps the engine's invariants.

Invariants checked after every step and at teardown:

* every job reaches exactly one final status, and a final status stays until a user
  action (pause, resume, cancel) moves it;
* no activation runs twice or is lost: the ledger's deliveries plus the job's
  ``pending_tasks`` equal its emissions (a cancelled job may only miss the dropped ones);
* a paused job starts nothing new; a cancelled job starts nothing new beyond the
  activations a worker had already taken when ``cancel`` returned;
* ``wait_for_completion`` returns ``True`` only for a final job, and for a completed job
  only once every handler has returned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from routilux import Flow, JobState

from ._support import FINAL, Ledger, check_job, describe, diamond_flow, format_all_stacks


WAIT = 30.0


def bounded(call: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Run a control call on a helper thread; fail with every stack if it never returns."""
    box: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            box.append(call())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=target, name=f"bounded-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"{what} did not return in {timeout}s\n{format_all_stacks()}")
    if errors:
        raise errors[0]
    return box[0] if box else None


@attrs.define(eq=False)
class JobModel:
    """The test's view of one job."""

    state: JobState
    #: Cancelled at least once: dropped work may be missing.
    lossy: bool = False
    #: Loaded from serialized data: merge buffers restarted.
    reloaded: bool = False
    #: The final status seen by a successful wait, until the next user action.
    final_seen: str | None = None
    #: Activations a worker had taken when the last cancel returned.
    allowed_late: int = 0


class JobMachine(RuleBasedStateMachine):
    """Drives jobs of one diamond flow; the ledger checks every delivery."""

    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger()
        self.flow: Flow | None = None
        self.models: list[JobModel] = []

    @initialize(strategy=st.sampled_from(["sequential", "concurrent"]), flaky=st.booleans())
    def make_flow(self, strategy: str, flaky: bool) -> None:
        self.flow = diamond_flow(self.ledger, strategy, 2, spin=20, flaky=flaky)

    @property
    def f(self) -> Flow:
        assert self.flow is not None
        return self.flow

    @rule(target=jobs, n=st.integers(0, 4))
    def submit(self, n: int) -> JobModel:
        model = JobModel(self.f.submit("src", {"n": n}))
        self.models.append(model)
        return model

    @rule(model=jobs)
    def pause(self, model: JobModel) -> None:
        js = model.state
        bounded(lambda: self.f.pause(js, "machine"), "pause")
        self.ledger.hold(js.job_id, "paused")
        model.final_seen = None
        assert js.status == "paused"
        # Called from outside the job, pause returns with nothing of the job running:
        # everything emitted so far was delivered once or is pending.
        problems = check_job(self.ledger, js, lossy=model.lossy, reloaded=model.reloaded)
        assert not problems, "\n".join([*problems, describe(js)])

    @rule(model=jobs)
    def resume(self, model: JobModel) -> None:
        js = model.state
        if js.status != "paused":
            return
        self.ledger.release(js.job_id)
        model.final_seen = None
        returned = bounded(lambda: self.f.resume(js), "resume")
        assert returned is js

    @rule(model=jobs)
    def cancel(self, model: JobModel) -> None:
        js = model.state

        def do() -> int:
            with js._settled:
                self.f.cancel(js, "machine")
                run = js._run
                return run.in_flight if run is not None else 0

        model.allowed_late += bounded(do, "cancel")
        self.ledger.hold(js.job_id, "cancelled")
        model.lossy = True
        model.final_seen = None
        assert js.status == "cancelled"
        assert js.wait_for_completion(0), "a cancelled job must count as finished at once"

    @rule(model=jobs, timeout=st.sampled_from([0.0, 0.01]))
    def wait(self, model: JobModel, timeout: float) -> None:
        if model.state.wait_for_completion(timeout):
            self._finished(model)

    @rule(model=jobs)
    def wait_until_final(self, model: JobModel) -> None:
        js = model.state
        if js.status == "paused":
            return
        # Nothing else acts on the job while this rule runs: it must finish.
        if not js.wait_for_completion(WAIT):
            raise AssertionError(f"{describe(js)}\nnever finished\n{format_all_stacks()}")
        self._finished(model)

    def _finished(self, model: JobModel) -> None:
        js = model.state
        status = js.status
        assert status in FINAL, f"wait_for_completion returned True for {js!r}"
        if model.final_seen is None:
            model.final_seen = status
        if status == "completed":
            with self.ledger.lock:
                running = self.ledger.running[js.job_id]
            assert running == 0, f"{js!r} completed with {running} handler(s) running"
            problems = check_job(self.ledger, js, lossy=model.lossy, reloaded=model.reloaded)
            assert not problems, "\n".join([*problems, describe(js)])

    @rule(model=jobs)
    def serialize_and_reload(self, model: JobModel) -> None:
        old = model.state
        if old.status != "paused":
            return
        doc = old.serialize()
        new = JobState()
        new.deserialize(doc)
        assert new.job_id == old.job_id
        assert new.status == "paused"
        assert new.pending_tasks == old.pending_tasks
        model.state = new
        model.reloaded = True

    @invariant()
    def no_violation_as_it_happened(self) -> None:
        with self.ledger.lock:
            violations = list(self.ledger.violations)
            late = dict(self.ledger.late_starts)
        assert not violations, violations[:5]
        paused_late = {k: v for k, v in late.items() if k[1] == "paused"}
        assert not paused_late, f"handlers started while paused: {paused_late}"

    @invariant()
    def final_status_stays(self) -> None:
        for model in self.models:
            if model.final_seen is not None:
                assert model.state.status == model.final_seen, describe(model.state)

    def teardown(self) -> None:
        if self.flow is None:
            return
        try:
            for model in self.models:
                js = model.state
                if js.status == "paused":
                    self.ledger.release(js.job_id)
                    bounded(lambda js=js: self.f.resume(js), "teardown resume")
            for model in self.models:
                js = model.state
                if not js.wait_for_completion(WAIT):
                    raise AssertionError(f"{js!r} never finished\n{format_all_stacks()}")
                assert js.status in FINAL
                problems = check_job(self.ledger, js, lossy=model.lossy, reloaded=model.reloaded)
                assert not problems, "\n".join([*problems, describe(js)])
                late = self.ledger.late_starts[(js.job_id, "cancelled")]
                assert late <= model.allowed_late, f"{js!r}: {late} handler(s) started after cancel"
            assert self.f.wait_for_completion(WAIT)
        finally:
            self.f.shutdown(wait=True, timeout=WAIT)


JobMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestJobMachine = JobMachine.TestCase
