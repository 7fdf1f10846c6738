"""
What the ``routilux`` command prints about a job: its outcome, errors, hints and exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from routilux.exceptions import (
    JobStoreError,
)


if TYPE_CHECKING:
    from routilux.engine._flow import Flow
    from routilux.model._job_state import JobState
    from routilux.store import JobRecord
from routilux.cli._codes import EXIT_COMPLETED, EXIT_COMPLETED_WITH_ERRORS, EXIT_FAILED, STATUS_EXIT
from routilux.cli._common import fmt_time, jsonable, questions_waiting
from routilux.testing._testcase import job_results


__all__ = [
    "error_line",
    "exit_code",
    "print_outcome",
    "record_line",
    "resume_hints",
    "show_data",
    "stored_job_state",
]


def resume_hints(
    job_id: str, args: argparse.Namespace | None, waiting: Collection[str] = ()
) -> list[str]:
    # The commands that resume ``job_id``, as they work when typed: the same store (when one
    # was named, by --store or ROUTILUX_STORE), the same --import arguments, and the --set
    # answer of a waiting HumanInput (with --routine when several wait). Shared by run,
    # resume and show.
    words = ["routilux", "resume", job_id]
    store = getattr(args, "store", None) or os.environ.get("ROUTILUX_STORE")
    if store:
        words += ["--store", store]
    for name in getattr(args, "imports", None) or ():
        words += ["--import", name]
    command = " ".join(shlex.quote(word) for word in words)
    if not waiting:
        return [command]
    if len(waiting) == 1:
        return [f"{command} --set answer=VALUE"]
    return [f"{command} --routine {shlex.quote(rid)} --set answer=VALUE" for rid in sorted(waiting)]


def print_outcome(
    flow: Flow, job_state: JobState, out: TextIO, args: argparse.Namespace | None = None
) -> None:
    status = job_state.status
    print(f"job {job_state.job_id} {status}", file=out)
    for error in job_state.errors:
        print(f"  {error_line(error.serialize())}", file=out)
    for entry in job_state.output_log:
        data = json.dumps(jsonable(entry.get("data")), ensure_ascii=False)
        print(f"  output {entry.get('routine_id')}.{entry.get('output_type')}: {data}", file=out)
    for rid, event, data in job_results(flow, job_state):
        payload = json.dumps(jsonable(data), ensure_ascii=False)
        print(f"  result {rid}.{event}: {payload}", file=out)
    if status == "paused":
        waiting = questions_waiting(job_state)
        for rid, request in waiting.items():
            print(f"  waiting: {rid} asks {request.get('question')!r}", file=out)
        for hint in resume_hints(job_state.job_id, args, waiting):
            print(f"  resume with: {hint}", file=out)


def error_line(error: dict[str, Any]) -> str:
    # One line per recorded error: where, which attempt, what the strategy did, what.
    how = error.get("strategy")
    what = (
        "retried"
        if how == "retry"
        else {"stop": "stopped the job", "skip": "skipped"}.get(str(how), "went on without it")
    )
    return (
        f"error in {error.get('routine_id')}.{error.get('slot')} "
        f"(attempt {error.get('attempt')}, {what}): "
        f"{error.get('error_type')}: {error.get('message')}"
    )


def exit_code(status: str, errors: Sequence[Any]) -> int:
    # The exit code of a job: its status, and 5 for a completed job that lost work to errors.
    # (A completed job's "stop" errors were all run again by a retry of the job.)
    code = STATUS_EXIT.get(status, EXIT_FAILED)
    if code == EXIT_COMPLETED and any(e.strategy in ("continue", "skip") for e in errors):
        return EXIT_COMPLETED_WITH_ERRORS
    return code


def record_line(record: JobRecord, width: int = 36) -> str:
    # One row of `routilux jobs`, its job id padded to the column's width.
    job_id = f"{record.job_id:<{width}}"
    if record.damaged is not None:
        # The row cannot be decoded: say so where the status goes, and why at the end.
        return (
            f"{job_id}  {'damaged':<9}  {record.flow_id!s:<20}  "
            f"{fmt_time(record.updated_at)}  ({record.damaged})"
        )
    return f"{job_id}  {record.status:<9}  {record.flow_id:<20}  {fmt_time(record.updated_at)}"


def show_data(record: JobRecord) -> dict[str, Any]:
    state = record.state or {}
    return {
        "job_id": record.job_id,
        "flow_id": record.flow_id,
        "status": record.status,
        "entry_routine_id": record.entry_routine_id,
        "entry_params": record.entry_params,
        "options": record.options,
        "attempt": record.attempt,
        "worker": record.worker,
        "requested": record.requested,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "routine_states": state.get("routine_states", {}),
        "history": state.get("execution_history", []),
        "outputs": state.get("output_log", []),
        "shared_data": state.get("shared_data", {}),
        "errors": state.get("errors", []),
        "pending_tasks": len(state.get("pending_tasks") or []),
        "failed_tasks": len(state.get("failed_tasks") or []),
        "pause_points": state.get("pause_points", []),
    }


def stored_job_state(record: JobRecord) -> JobState | None:
    # The job's checkpoint as a JobState (None before the first one); a state that does not
    # load is a damaged job, reported like a row that cannot be decoded.
    from routilux.exceptions import DeserializationError
    from routilux.model._job_state import JobState

    if record.state is None:
        return None
    job_state = JobState()
    try:
        job_state.deserialize(record.state)
    except DeserializationError as exc:
        msg = f"job {record.job_id!r} is damaged in the store: state_json: {exc}"
        raise JobStoreError(msg, job_id=record.job_id) from None
    return job_state
