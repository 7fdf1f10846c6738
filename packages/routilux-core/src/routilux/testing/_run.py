"""
run_flow: run a job to its end in a test, answering the questions it asks a person, and
fail the test with the job's story if it did not complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from routilux.engine._flow import Flow
from routilux.exceptions import UnknownRoutineTypeError
from routilux.model._job_state import JobState
from routilux.names._routines import get_routine_class
from routilux.testing._checks import describe_job


__all__ = ["run_flow"]

Answers = Mapping[str, "Mapping[str, Any] | Sequence[Mapping[str, Any]]"]
"""Answers to ``HumanInput`` questions by routine id: the values of one answer, or a list
of them for a routine asked several times, used in order."""


def run_flow(
    flow: Flow,
    entry: str,
    params: Mapping[str, Any] | None = None,
    *,
    answers: Answers | None = None,
    timeout: float = 30.0,
    **options: Any,
) -> JobState:
    """
    Run a job of ``flow`` at ``entry`` with ``params`` and return its JobState once it
    completed.

    When the job pauses on a ``HumanInput`` question (routilux-stdlib) that ``answers``
    answers, the answer is given and the job resumed, as ``routilux resume --set`` does.

    Args:
        flow: The flow (see the ``routilux_flow`` fixture, which shuts it down after the
            test).
        entry: The entry routine id.
        params: The entry data.
        answers: ``{routine_id: {"answer": "yes"}}``, or a list of such values per routine.
        timeout: Seconds each run may take at most.
        **options: More arguments of ``Flow.execute`` (``execution_strategy=``,
            ``output_handler=``, ``job_state=``...).

    Raises:
        AssertionError: The job did not complete (it failed, was cancelled, stayed paused
            or was still running after ``timeout``): the message gives its status, its
            errors, what it waits for and its history.
    """
    __tracebackhide__ = True
    given = {rid: _as_list(values) for rid, values in (answers or {}).items()}
    job = flow.execute(entry, dict(params or {}), timeout=timeout, **options)
    while job.status == "paused" and _answer(job, given):
        flow.resume(job)
        if not job.wait_settled(timeout):
            break
    if job.status != "completed" or not job.wait_for_completion(timeout):
        waiting = _waiting(job)
        asks = "".join(f"\n  waiting: {rid} asks {q!r}" for rid, q in waiting.items())
        msg = f"the job did not complete: {job.status}{asks}\n{describe_job(job)}"
        raise AssertionError(msg)
    return job


def _as_list(values: Any) -> list[dict[str, Any]]:
    if isinstance(values, Mapping):
        return [dict(values)]
    return [dict(v) for v in values]


def _human_input() -> Any:
    try:
        return get_routine_class("HumanInput")
    except UnknownRoutineTypeError:
        return None


def _waiting(job: JobState) -> dict[str, str]:
    cls = _human_input()
    if cls is None:
        return {}
    return {rid: str(req.get("question")) for rid, req in cls.waiting(job).items()}


def _answer(job: JobState, given: dict[str, list[dict[str, Any]]]) -> bool:
    # Give the next answer to each question waiting; True when one was given.
    cls = _human_input()
    if cls is None:
        return False
    answered = False
    for rid in cls.waiting(job):
        queue = given.get(rid)
        if queue:
            cls.provide_answer(job, rid, **queue.pop(0))
            answered = True
    return answered
