"""
The storm: many concurrent jobs of the diamond flow while controller threads pause,
resume, cancel and retry them at random, with a tiny GIL switch interval. Used by the CI
test (a few seconds) and by ``benchmarks/storm_long.py`` (minutes).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import attrs

from routilux import JobState
from routilux.exceptions import JobStateError
from routilux.lifecycle import allowed

from ._support import (
    FINAL,
    Ledger,
    Lifecycle,
    Watchdog,
    check_job,
    describe,
    diamond_flow,
    expected_deliveries,
    format_all_stacks,
    switch_interval,
)


@attrs.define
class StormReport:
    """What a storm did and what it found."""

    jobs: int = 0
    actions: Counter[str] = attrs.field(factory=Counter)
    #: Actions the lifecycle table refused (``JobStateError``), by action.
    refused: Counter[str] = attrs.field(factory=Counter)
    statuses: Counter[str] = attrs.field(factory=Counter)
    activations: int = 0
    seconds: float = 0.0
    problems: list[str] = attrs.field(factory=list)


@attrs.define(eq=False)
class _Job:
    state: JobState
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    cancelled: bool = False
    allowed_late: int = 0
    resumes: int = 0
    cancels: int = 0
    retries: int = 0


def run_storm(
    *,
    jobs: int = 100,
    workers: int = 4,
    controllers: int = 3,
    fanout: int = 4,
    control_seconds: float = 1.0,
    deadline: float = 120.0,
    seed: int = 0,
    switch: float = 1e-6,
    spin: int = 50,
    strategy: str = "concurrent",
    chaos: bool = False,
    blocking: bool = False,
    flaky: bool = False,
    failing: bool = False,
) -> StormReport:
    """
    Run one storm and return its report; ``report.problems`` lists broken invariants.

    ``chaos``: controllers act on a job without taking its lock (concurrent pause, resume
    and cancel of one job); the held-paused and late-start checks are off then, and a job
    ever cancelled may miss its dropped work. ``blocking``: the submitters call
    ``execute`` (a sequential job drains on the submitting thread) instead of ``submit``.
    ``flaky``: one branch fails each first attempt and retries on the flow's timer.
    ``failing``: the other branch fails each job's first attempt at one token with a STOP
    error, so jobs fail and the controllers retry them. A ``JobStateError`` is the only
    exception a control call may raise, and only where the lifecycle table refuses the
    action for the job's status; any job reported ``completed`` delivered every item of
    its work exactly once, and a cancelled job stays cancelled.

    Controllers serialise their actions on one job with a per-job lock, so the test
    knows when a job is held paused or cancelled; different jobs are controlled at once
    and by several threads.
    """
    ledger = Ledger()
    life = Lifecycle()
    flow = diamond_flow(
        ledger, strategy, workers, plugin=life, spin=spin, flaky=flaky, failing=failing
    )
    report = StormReport(jobs=jobs)
    registry: list[_Job] = []
    registry_lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []
    #: At most a fifth of the jobs are cancelled, so most of them run to the end.
    cancel_budget = [jobs // 5]
    t_start = time.perf_counter()

    def register(js: JobState) -> None:
        with registry_lock:
            registry.append(_Job(js))

    if blocking:
        life.on_started = register

    def submitter(count: int) -> None:
        try:
            for _ in range(count):
                if blocking:
                    # Registered by the job_started hook: a JobState paused before its
                    # execute starts would simply be started by that execute.
                    flow.execute("src", {"n": fanout})
                    continue
                js = flow.submit("src", {"n": fanout})
                with registry_lock:
                    registry.append(_Job(js))
        except Exception as exc:
            errors.append(f"submitter: {exc!r}")

    def refused(job: _Job, action: str, exc: JobStateError) -> None:
        # A refusal must name the job and a status the table refuses the action for.
        report.refused[action] += 1
        if exc.job_id != job.state.job_id or allowed(exc.status, action):
            errors.append(f"{action} refused wrongly on {job.state!r}: {exc}")

    def controller(rng: random.Random) -> None:
        weights = (4, 4, 1, 2 if failing else 0, 3)
        try:
            while not stop.is_set():
                with registry_lock:
                    job = rng.choice(registry) if registry else None
                if job is None:
                    stop.wait(0.001)
                    continue
                action = rng.choices(("pause", "resume", "cancel", "retry", "peek"), weights)[0]
                if action == "cancel":
                    with registry_lock:
                        if cancel_budget[0] <= 0:
                            action = "peek"
                        else:
                            cancel_budget[0] -= 1
                try:
                    if chaos:
                        chaos_action(job, action)
                    else:
                        with job.lock:
                            held_action(job, action)
                except JobStateError as exc:
                    refused(job, action, exc)
                    continue
                report.actions[action] += 1
        except Exception as exc:
            errors.append(f"controller: {exc!r}")

    def released(js: JobState, call: Callable[[JobState], object]) -> None:
        # Resume or retry: handler starts of the job are normal from the call on, unless
        # the lifecycle refuses it (then the job stays held as it was).
        with ledger.lock:
            held = ledger.stopped.get(js.job_id)
        ledger.release(js.job_id)
        try:
            call(js)
        except JobStateError:
            if held is not None:
                ledger.hold(js.job_id, held)
            raise

    def held_action(job: _Job, action: str) -> None:
        js = job.state
        if action == "pause":
            flow.pause(js, "storm")
            ledger.hold(js.job_id, "paused")
        elif action == "resume":
            released(js, flow.resume)
            job.resumes += 1
        elif action == "retry":
            if js.status == "failed" and not js.wait_for_completion(0):
                return  # its failed run is still winding down
            released(js, flow.retry)
            job.retries += 1
        elif action == "cancel":
            with js._settled:
                flow.cancel(js, "storm")
                run = js._run
                if not job.cancelled:  # a cancel of a cancelled job does nothing
                    job.allowed_late = run.in_flight if run is not None else 0
            ledger.hold(js.job_id, "cancelled")
            job.cancelled = True
            job.cancels += 1
        else:
            js.get_execution_history()
            js.wait_for_completion(0)

    def chaos_action(job: _Job, action: str) -> None:
        js = job.state
        if action == "pause":
            flow.pause(js, "chaos")
        elif action == "resume":
            job.resumes += 1
            flow.resume(js)
        elif action == "retry":
            job.retries += 1
            flow.retry(js)
        elif action == "cancel":
            flow.cancel(js, "chaos")
            job.cancelled = True
            job.cancels += 1
        else:
            js.wait_for_completion(0)

    with switch_interval(switch), Watchdog(deadline) as dog:
        per = jobs // 2
        threads = [
            threading.Thread(target=submitter, args=(per,), name="storm-submit-0"),
            threading.Thread(target=submitter, args=(jobs - per,), name="storm-submit-1"),
        ]
        threads += [
            threading.Thread(
                target=controller, args=(random.Random(seed * 1000 + i),), name=f"storm-ctl-{i}"
            )
            for i in range(controllers)
        ]
        for t in threads:
            t.start()
        for t in threads[:2]:
            t.join(deadline)
        stop.wait(control_seconds)
        stop.set()
        for t in threads:
            t.join(max(1.0, deadline - (time.perf_counter() - t_start)))
            if t.is_alive():
                report.problems.append(f"thread {t.name} hung\n{format_all_stacks()}")
                return report
        report.problems.extend(errors)
        # Let every job finish: resume the ones the storm left paused, retry the failed
        # ones (a job fails at most once per token, so this ends).
        for _ in range(4):
            for job in registry:
                js = job.state
                if js.status == "paused":
                    ledger.release(js.job_id)
                    job.resumes += 1
                    flow.resume(js)
            for job in registry:
                js = job.state
                left = max(0.1, deadline - (time.perf_counter() - t_start))
                if not js.wait_for_completion(left):
                    report.problems.append(f"{js!r} never finished\n{format_all_stacks()}")
                    return report
                if js.status == "failed":
                    job.retries += 1
                    flow.retry(js)
        if not flow.wait_for_completion(max(0.1, deadline - (time.perf_counter() - t_start))):
            report.problems.append(f"flow.wait_for_completion timed out\n{format_all_stacks()}")
            return report
        dog.stop()
        if dog.fired:
            report.problems.append(f"watchdog fired\n{dog.report}")
    report.seconds = time.perf_counter() - t_start
    report.problems.extend(ledger.violations)
    for job in registry:
        js = job.state
        jid = js.job_id
        report.statuses[js.status] += 1
        if js.status not in FINAL:
            report.problems.append(f"{js!r} not final after wait_for_completion")
        if js.status == "failed":
            report.problems.append(f"{js!r} still failed after retries\n{describe(js)}")
        if job.cancelled != (js.status == "cancelled"):
            report.problems.append(f"{js!r}: cancelled={job.cancelled} but {js.status}")
        if js.status == "completed":
            with ledger.lock:
                running = ledger.running[jid]
            if running:
                report.problems.append(f"{js!r} completed with {running} handler(s) running")
            _, delivered = ledger.snapshot(jid)
            if delivered != expected_deliveries(fanout):
                with life.lock:
                    seen = list(life.statuses[jid])
                report.problems.append(
                    f"{js!r} completed, yet delivered {sorted(delivered.items())} "
                    f"(expected each of {fanout} items once; statuses {seen}; "
                    f"{job.resumes} resumes, {job.retries} retries)\n{describe(js)}"
                )
        found = check_job(ledger, js, lossy=job.cancelled)
        if found and len(report.problems) < 20:
            found.append(describe(js))
        report.problems.extend(found)
        paused_late = ledger.late_starts[(jid, "paused")]
        if paused_late and not chaos:
            report.problems.append(f"{js!r}: {paused_late} handler(s) started while paused")
        cancel_late = ledger.late_starts[(jid, "cancelled")]
        if cancel_late > job.allowed_late and not chaos:
            report.problems.append(
                f"{js!r}: {cancel_late} handler(s) started after cancel "
                f"(only {job.allowed_late} were taken before)"
            )
        with life.lock:
            changes = list(life.statuses[jid])
            finished = life.finished[jid]
        for old, new in changes:
            if old in FINAL and new in ("completed", "failed"):
                report.problems.append(f"{js!r}: final status {old!r} overwritten by {new!r}")
        after = [new for old, new in changes if old == "cancelled"]
        if after:
            report.problems.append(f"{js!r}: status changed after cancel to {after}")
        if finished < 1 or finished > 1 + job.resumes + job.cancels + job.retries:
            report.problems.append(
                f"{js!r}: job_finished called {finished} times "
                f"({job.resumes} resumes, {job.cancels} cancels, {job.retries} retries)"
            )
        with ledger.lock:
            report.activations += sum(ledger.delivered[jid].values())
    flow.shutdown(wait=True, timeout=deadline)
    return report
