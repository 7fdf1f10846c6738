"""
Assertions about a finished job that explain themselves: each failure shows the part of the
job's history that matters, not a repr of everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from routilux.model._job_state import JobState


__all__ = ["assert_emitted", "assert_no_errors", "assert_outputs", "describe_job"]

_MAX_LINES = 25


def _short(value: Any, limit: int = 120) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tail(lines: Sequence[str]) -> list[str]:
    if len(lines) <= _MAX_LINES:
        return list(lines)
    return [f"  ... {len(lines) - _MAX_LINES} earlier lines", *lines[-_MAX_LINES:]]


def _records(job: JobState, routine_id: str | None = None) -> list[str]:
    return [
        f"  {r.routine_id}.{r.event_name} {_short(_visible(r.data))}"
        for r in job.get_execution_history(routine_id)
    ]


def _visible(data: Any) -> Any:
    # Error records carry a traceback: the message says enough in a listing.
    if isinstance(data, dict) and "traceback" in data:
        return {k: v for k, v in data.items() if k != "traceback"}
    return data


def describe_job(job: JobState, routine_id: str | None = None) -> str:
    """
    Return a short account of a job: its status, its errors, what it waits for, and its
    history (of ``routine_id`` only, when given; the last lines of a long one).
    """
    lines = [f"{job!r}"]
    for error in job.errors:
        lines.append(
            f"  error in {error.routine_id}.{error.slot} (attempt {error.attempt}, "
            f"{error.strategy}): {error.error_type}: {error.message}"
        )
    pending = len(job.pending_tasks) + len(job.failed_tasks)
    if pending:
        lines.append(
            f"  pending activations: {len(job.pending_tasks)}, failed: {len(job.failed_tasks)}"
        )
    if job.pause_points:
        lines.append(f"  paused: {job.pause_points[-1].get('reason')!r}")
    history = _records(job, routine_id)
    lines.append("history" + (f" of {routine_id!r}" if routine_id else "") + ":")
    lines.extend(_tail(history) or ["  (none)"])
    return "\n".join(lines)


def _contains(data: Any, expected: dict[str, Any]) -> bool:
    return isinstance(data, dict) and all(k in data and data[k] == v for k, v in expected.items())


def assert_emitted(job: JobState, event: str, /, **data: Any) -> None:
    """
    Assert that the job recorded the event ``"routine.event"`` at least once, with payload
    values equal to ``data`` (a subset: other keys may be there too).

    Raises:
        AssertionError: No such record; the message shows that routine's history.
    """
    __tracebackhide__ = True
    routine_id, dot, name = event.rpartition(".")
    if not dot or not routine_id or not name:
        msg = f"assert_emitted takes 'routine.event', got {event!r}"
        raise ValueError(msg)
    for record in job.get_execution_history(routine_id):
        if record.event_name == name and _contains(record.data, data):
            return
    wanted = f" with {_short(data)}" if data else ""
    msg = f"{job!r} never emitted {event}{wanted}\n{describe_job(job, routine_id)}"
    raise AssertionError(msg)


def assert_outputs(
    job: JobState, routine_id: str, expected: Iterable[Any], /, *, ignore: Iterable[str] = ()
) -> None:
    """
    Assert that ``routine_id`` sent exactly these outputs (``send_output`` data dicts, or
    ``(output_type, data)`` pairs), in this order.

    Args:
        ignore: Keys of the data dicts left out of the comparison (values that change from
            run to run, such as times).

    Raises:
        AssertionError: They differ; the message shows both lists and where they part.
    """
    __tracebackhide__ = True
    skip = frozenset(ignore)
    want = [_without(w, skip) for w in expected]
    pairs = all(isinstance(w, tuple) and len(w) == 2 for w in want) and bool(want)
    got = [
        _without((e["output_type"], e["data"]) if pairs else e["data"], skip)
        for e in job.output_log
        if e.get("routine_id") == routine_id
    ]
    if got == want:
        return
    pairs_seen = zip(got, want, strict=False)
    first = next((i for i, (g, w) in enumerate(pairs_seen) if g != w), min(len(got), len(want)))
    lines = [f"{job!r}: outputs of {routine_id!r} differ from item {first} on"]
    lines += [f"  expected: {_short(w)}" for w in want[first : first + 5]]
    lines += [f"  got:      {_short(g)}" for g in got[first : first + 5]]
    lines.append(f"  ({len(want)} expected, {len(got)} sent)")
    raise AssertionError("\n".join(lines) + "\n" + describe_job(job, routine_id))


def _without(item: Any, skip: frozenset[str]) -> Any:
    if not skip:
        return item
    if isinstance(item, tuple) and len(item) == 2:
        return (item[0], _without(item[1], skip))
    if isinstance(item, dict):
        return {k: v for k, v in item.items() if k not in skip}
    return item


def assert_no_errors(job: JobState) -> None:
    """
    Assert that no handler of the job raised (``job.errors`` is empty).

    Raises:
        AssertionError: The message lists each error and the history around it.
    """
    __tracebackhide__ = True
    if job.errors:
        count = len(job.errors)
        raise AssertionError(f"{job!r} recorded {count} error(s)\n{describe_job(job)}")
