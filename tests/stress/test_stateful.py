"""
Stateful property test: any interleaving of submit, pause, resume, cancel, retry,
serialize-and-reload, a pause from inside a handler that keeps running, and wait on a set
of jobs keeps the engine's invariants.

Invariants checked after every step and at teardown:

* every job reaches exactly one final status, and a final status stays until a user
  action the lifecycle table allows (pause, resume, cancel, retry) moves it; a cancelled
  job stays cancelled for good, and what the table refuses raises ``JobStateError``;
* no activation runs twice or is lost: the ledger's deliveries plus the job's
  ``pending_tasks`` and ``failed_tasks`` equal its emissions (a cancelled job may only
  miss the dropped ones); a ``completed`` job delivered every activation it was given
  exactly once;
* a paused job starts nothing new; a cancelled job starts nothing new beyond the
  activations a worker had already taken when ``cancel`` returned;
* ``wait_for_completion`` returns ``True`` only for a final job, and for a completed job
  only once every handler has returned; ``wait_settled`` returns ``True`` for a paused job
  only once no handler of it runs, and a job saved then holds every activation.
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
from routilux.exceptions import JobStateError
from routilux.lifecycle import allowed

from ._support import (
    FINAL,
    Ledger,
    check_job,
    describe,
    diamond_flow,
    expected_deliveries,
    format_all_stacks,
)


WAIT = 10.0


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
    #: Tokens the source emits (the job's work).
    n: int = 0


class JobMachine(RuleBasedStateMachine):
    """Drives jobs of one diamond flow; the ledger checks every delivery."""

    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger()
        self.flow: Flow | None = None
        self.models: list[JobModel] = []

    @initialize(
        strategy=st.sampled_from(["sequential", "concurrent"]),
        flaky=st.booleans(),
        failing=st.booleans(),
    )
    def make_flow(self, strategy: str, flaky: bool, failing: bool) -> None:
        self.flow = diamond_flow(self.ledger, strategy, 2, spin=20, flaky=flaky, failing=failing)

    @property
    def f(self) -> Flow:
        assert self.flow is not None
        return self.flow

    @rule(target=jobs, n=st.integers(0, 4))
    def submit(self, n: int) -> JobModel:
        model = JobModel(self.f.submit("src", {"n": n}), n=n)
        self.models.append(model)
        return model

    def _refused(
        self, model: JobModel, action: str, call: Callable[[], Any], release: bool = False
    ) -> bool:
        # Run a control call; when it raises JobStateError, the job's status must be one
        # the lifecycle table refuses the action for, and it must not have changed.
        # ``release``: handler starts of the job are normal again from the call on (a
        # resume or retry), unless it is refused.
        js = model.state
        with self.ledger.lock:
            held = self.ledger.stopped.get(js.job_id)
        if release:
            self.ledger.release(js.job_id)
        try:
            bounded(call, action)
        except JobStateError as exc:
            refusal = exc
        else:
            return False
        if held is not None:
            self.ledger.hold(js.job_id, held)
        assert refusal.job_id == js.job_id
        assert not allowed(js.status, action), f"{action} refused on {describe(js)}"
        assert refusal.status == js.status, (refusal.status, js.status)
        return True

    @rule(model=jobs)
    def pause(self, model: JobModel) -> None:
        js = model.state
        if self._refused(model, "pause", lambda: self.f.pause(js, "machine")):
            return
        self.ledger.hold(js.job_id, "paused")
        model.final_seen = None
        # A STOP error of a handler still running while the job paused fails it.
        assert js.status in ("paused", "failed"), describe(js)
        # Called from outside the job, pause returns with nothing of the job running:
        # everything emitted so far was delivered once or is pending.
        problems = check_job(self.ledger, js, lossy=model.lossy, reloaded=model.reloaded)
        assert not problems, "\n".join([*problems, describe(js)])

    @rule(model=jobs)
    def resume(self, model: JobModel) -> None:
        js = model.state
        if js.status not in ("paused", "cancelled", "failed"):
            return
        before = js.status
        if self._refused(model, "resume", lambda: self.f.resume(js), release=True):
            assert before in ("cancelled", "failed")
            return
        model.final_seen = None
        assert before == "paused"

    @rule(model=jobs)
    def retry(self, model: JobModel) -> None:
        js = model.state
        if not js.wait_for_completion(0) and js.status != "paused":
            return  # running: whether it fails first is a race
        before = js.status
        if self._refused(model, "retry", lambda: self.f.retry(js), release=True):
            assert before != "failed"
            return
        assert before == "failed"
        model.final_seen = None

    @rule(model=jobs)
    def cancel(self, model: JobModel) -> None:
        js = model.state

        def do() -> int:
            with js._settled:
                self.f.cancel(js, "machine")
                run = js._run
                return run.in_flight if run is not None else 0

        try:
            model.allowed_late += bounded(do, "cancel")
        except JobStateError:
            assert js.status == "failed", describe(js)
            return
        self.ledger.hold(js.job_id, "cancelled")
        model.lossy = True
        model.final_seen = None
        assert js.status == "cancelled"
        assert js.wait_for_completion(0), "a cancelled job must count as finished at once"

    @rule(target=jobs, n=st.integers(1, 3))
    def pause_inside_then_save(self, n: int) -> JobModel:
        # A handler pauses its own job and keeps running; wait_settled() waits for it, and
        # the job saved then holds every activation: loaded and resumed, it delivers all.
        gate = threading.Event()
        paused = threading.Event()
        ledger = self.ledger

        def hook(job_id: str, routine: str, token: str) -> None:
            if routine != "src" or token != "entry" or job_id != box[0].job_id:
                return
            ctx = box[1]
            ctx.flow.pause(ctx.job_state, "inside")
            paused.set()
            assert gate.wait(WAIT), "the test never opened the gate"

        box: list[Any] = []
        js = JobState(self.f.flow_id)
        box[:] = [js, None]

        def capture(job_id: str, routine: str, token: str) -> None:
            if job_id == js.job_id and routine == "src":
                box[1] = self.f.routines["src"].get_execution_context()
                hook(job_id, routine, token)

        ledger.on_start = capture
        try:
            self.f.submit("src", {"n": n}, job_state=js)
            assert paused.wait(WAIT), f"the handler never paused its job\n{describe(js)}"
            ledger.hold(js.job_id, "paused")
            assert js.status == "paused"
            assert not js.wait_settled(0), "settled while its handler still runs"
            assert not self.f.wait_for_completion(0), "flow idle while a handler runs"
        finally:
            ledger.on_start = None
            gate.set()
        assert js.wait_settled(WAIT), f"never settled\n{describe(js)}"
        with ledger.lock:
            assert ledger.running[js.job_id] == 0
        loaded = JobState()
        loaded.deserialize(js.serialize())
        model = JobModel(loaded, reloaded=True, n=n)
        self.models.append(model)
        return model

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
            self._check_completed(model)

    def _check_completed(self, model: JobModel) -> None:
        js = model.state
        with self.ledger.lock:
            running = self.ledger.running[js.job_id]
        assert running == 0, f"{js!r} completed with {running} handler(s) running"
        problems = check_job(self.ledger, js, lossy=model.lossy, reloaded=model.reloaded)
        assert not problems, "\n".join([*problems, describe(js)])
        if not model.lossy:
            _, delivered = self.ledger.snapshot(js.job_id)
            expected = expected_deliveries(model.n)
            assert expected == delivered, f"completed, yet delivered {delivered}\n{describe(js)}"

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
            if model.lossy:
                assert model.state.status == "cancelled", describe(model.state)

    def teardown(self) -> None:
        if self.flow is None:
            return
        try:
            # Resume what is paused and retry what failed, until every job is final and
            # not failed (a job fails at most once per token: retries end).
            for _ in range(4):
                for model in self.models:
                    js = model.state
                    if js.status == "paused":
                        self.ledger.release(js.job_id)
                        bounded(lambda js=js: self.f.resume(js), "teardown resume")
                for model in self.models:
                    js = model.state
                    if not js.wait_for_completion(WAIT):
                        raise AssertionError(f"{js!r} never finished\n{format_all_stacks()}")
                    if js.status == "failed":
                        bounded(lambda js=js: self.f.retry(js), "teardown retry")
            for model in self.models:
                js = model.state
                if not js.wait_for_completion(WAIT):
                    raise AssertionError(f"{js!r} never finished\n{format_all_stacks()}")
                assert js.status in ("completed", "cancelled"), describe(js)
                problems = check_job(self.ledger, js, lossy=model.lossy, reloaded=model.reloaded)
                assert not problems, "\n".join([*problems, describe(js)])
                if js.status == "completed":
                    self._check_completed(model)
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
