"""
Targeted races found by the storm: control calls on one job from several threads at once,
made reproducible by widening the window in a Flow subclass.
"""

from __future__ import annotations

import threading
from typing import Any

from routilux import Flow, JobState
from routilux.lifecycle import Action

from ._support import Ledger, check_job, diamond_flow


WAIT = 10.0


class _WideFlow(Flow):
    """Counts new runs and holds the first one back until a second caller arrives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new_runs = 0
        self.second = threading.Event()
        self.count_lock = threading.Lock()
        # Armed by a test: the run a resume made starts its work only once both
        # resumes have looked the job's run up (so the other one finds it live).
        self.lookups: int | None = None
        self.both_looked = threading.Event()

    def _run_of(self, job_state: JobState) -> Any:
        with self.count_lock:
            if self.lookups is not None:
                self.lookups += 1
                if self.lookups == 2:
                    self.both_looked.set()
        return super()._run_of(job_state)

    def _job_active(self, run: Any) -> None:
        if self.lookups is not None:
            self.both_looked.wait(WAIT)
        super()._job_active(run)

    def _new_run(self, job_state: JobState, sequential: bool) -> Any:
        with self.count_lock:
            self.new_runs += 1
            first = self.new_runs == 1
        if first:
            # Give a concurrent resume the chance to make a run of its own (bounded).
            self.second.wait(0.3)
        else:
            self.second.set()
        return super()._new_run(job_state, sequential)


def _wide_diamond(ledger: Ledger) -> _WideFlow:
    model = diamond_flow(ledger, "concurrent", 2, spin=5)
    flow = _WideFlow(model.flow_id, execution_strategy="concurrent", max_workers=2)
    for rid, routine in model.routines.items():
        flow.add_routine(routine, rid)
    for conn in model.connections:
        assert conn.source_event is not None
        assert conn.target_slot is not None
        flow.connect(
            str(conn.source_routine_id),
            conn.source_event.name,
            str(conn.target_routine_id),
            conn.target_slot.name,
        )
    return flow


def _run_threads(*targets: Any) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads), "a control call hung"


class TestConcurrentControlOfOneJob:
    def test_concurrent_resumes_of_finished_job_make_one_run(self) -> None:
        """Two threads resuming the same finished job: one new run, the job finishes once."""
        ledger = Ledger()
        flow = _wide_diamond(ledger)
        js = flow.submit("src", {"n": 2})
        assert js.wait_for_completion(WAIT)
        flow.new_runs = 0
        flow.lookups = 0
        js.add_deferred_event("src", "out", {"token": "late"})
        with ledger.lock:
            for target in ("left", "right"):
                ledger.emitted[js.job_id][(target, "late")] += 1
        _run_threads(lambda: flow.resume(js), lambda: flow.resume(js))
        assert js.wait_for_completion(WAIT)
        assert flow.wait_for_completion(WAIT)
        assert flow.both_looked.is_set(), "the second resume never looked the job up"
        assert flow.new_runs == 1, "two runs were made for one job"
        assert js.status == "completed"
        assert not check_job(ledger, js)
        flow.shutdown(wait=True, timeout=WAIT)

    def test_pause_racing_resume_of_finished_job_holds(self) -> None:
        """
        A pause racing the resume of a finished job: once both returned and the job is
        paused, it runs nothing until resumed again.
        """
        ledger = Ledger()
        flow = _wide_diamond(ledger)
        js = flow.submit("src", {"n": 1})
        assert js.wait_for_completion(WAIT)
        js.add_deferred_event("src", "out", {"token": "late"})
        with ledger.lock:
            for target in ("left", "right"):
                ledger.emitted[js.job_id][(target, "late")] += 1
        pause_done = threading.Event()

        def pause() -> None:
            flow.second.wait(WAIT)
            flow.pause(js, "race")
            pause_done.set()

        def resume_twice() -> None:
            flow.resume(js)

        _run_threads(resume_twice, pause, lambda: flow.resume(js))
        assert pause_done.is_set()
        if js.status == "paused":
            ledger.hold(js.job_id, "paused")
            run = js._run
            assert run is not None
            assert run.paused, "status says paused but the job's run is not"
            ledger.release(js.job_id)
            flow.resume(js)
        assert js.wait_for_completion(WAIT)
        assert flow.wait_for_completion(WAIT)
        assert not check_job(ledger, js)
        flow.shutdown(wait=True, timeout=WAIT)


class TestStaleRunReferences:
    """
    A control call that looked the run up just before the job finished holds a stale run
    once a resume has given the job a new one; it must act on the job's live run.
    """

    def _stale_and_live(self, flow: Flow, js: JobState) -> tuple[Any, Any]:
        """Finish a run of the job, then give the job a new live run; return both."""
        js.add_deferred_event("src", "out", {"token": "a"})
        flow.resume(js)
        assert js.wait_for_completion(WAIT)
        stale = flow._last_run  # finished: the job now holds only a ReleasedRun
        flow.pause(js, "p")
        js.add_deferred_event("src", "out", {"token": "b"})
        flow.resume(js)
        return stale, js._run

    def test_stale_reopen_does_not_steal_the_job(self) -> None:
        """reopen() of a stale run refuses: the job keeps its live run."""
        flow = diamond_flow(Ledger(), "concurrent", 2, spin=5)
        js = flow.submit("src", {"n": 1})
        assert js.wait_for_completion(WAIT)
        stale, live = self._stale_and_live(flow, js)
        assert stale is not live
        assert stale.reopen(Action.RESUME) is False
        assert js._run is live or not hasattr(js._run, "queue")
        assert js.wait_for_completion(WAIT)
        flow.shutdown(wait=True, timeout=WAIT)

    def test_stale_pause_and_cancel_reach_the_live_run(self) -> None:
        """pause() and cancel() called on a stale run act on the job's live run."""
        ledger = Ledger()
        flow = diamond_flow(ledger, "concurrent", 2, spin=5)
        js = flow.submit("src", {"n": 1})
        assert js.wait_for_completion(WAIT)
        first, live = self._stale_and_live(flow, js)
        flow.pause(js, "hold")  # nothing of the live run may run between the calls below
        first.pause("stale pause", None)
        assert js.status == "paused"
        assert live.paused, "the stale pause did not reach the live run"
        first.cancel("stale cancel")
        assert js.status == "cancelled"
        assert live.cancelled, "the stale cancel did not reach the live run"
        flow.shutdown(wait=True, timeout=WAIT)


class TestRetryTimerHandOff:
    def test_job_does_not_finish_while_a_due_retry_is_handed_over(self, monkeypatch: Any) -> None:
        """
        Between the timer taking a due retry and queueing it, the job is not quiescent:
        a worker looking for work then must not finish the job without the retry.
        """
        from routilux import ErrorHandler, ErrorStrategy, Routine
        from routilux.engine._run import JobRun

        class Once(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", self.go)

            def go(self) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                if ctx.job_state.modify_shared_data("tries", lambda v: v + 1, 0) == 1:
                    raise RuntimeError("first attempt fails")

        original = JobRun.enqueue

        def slow_hand_off(self: JobRun, acts: Any, reserve: bool = False) -> None:
            if threading.current_thread().name.startswith("routilux-timer"):
                self.schedule()  # a worker now looks for work while the retry is in hand
                with self.cond:
                    self.cond.wait_for(lambda: self.finished, 0.5)
            original(self, acts, reserve)

        monkeypatch.setattr(JobRun, "enqueue", slow_hand_off)
        flow = Flow(execution_strategy="concurrent", max_workers=2)
        once = Once()
        once.set_error_handler(
            ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01)
        )
        flow.add_routine(once, "once")
        js = flow.submit("once")
        assert js.wait_for_completion(WAIT)
        assert js.shared_data["tries"] == 2, "the job finished without its retry"
        assert js.status == "completed"
        flow.shutdown(wait=True, timeout=WAIT)
