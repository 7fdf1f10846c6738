"""
Job rows as JobRecords: the decoding every SQL store shares, and the error of a missing job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from routilux.exceptions import JobNotFoundError
from routilux.persist._protocols import JobRecord


__all__ = ["decode_failure", "job_record", "missing_job"]


def missing_job(job_id: str) -> JobNotFoundError:
    """
    Return the error a store raises for a job it does not hold (a
    :class:`~routilux.exceptions.JobNotFoundError` naming the job).
    """
    msg = f"no job {job_id!r} in the store"
    return JobNotFoundError(msg, job_id=job_id)


def decode_failure(exc: BaseException) -> str:
    """
    Return one line saying why a stored JSON value could not be decoded (``exc`` is what
    decoding raised), as :attr:`JobRecord.damaged` and the stores' errors give it.
    """
    if isinstance(exc, RecursionError):
        return "not valid JSON (nested too deeply)"
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"not valid JSON ({text})" if isinstance(exc, ValueError) else text


def job_record(row: Sequence[Any], decode: Callable[[Any], Any] = lambda v: v) -> JobRecord:
    """
    Return the JobRecord of a job row selected with the stores' column order: ``job_id,
    flow_id, fingerprint, status, entry_routine_id, entry_params, options, state, requested,
    attempt, worker, created_at, updated_at, checkpoint_seq, forked_from`` (the last two
    may be left out).

    A row that cannot be decoded (a column that is not valid JSON, not a JSON object, or a
    number column that holds no number) is returned all the same, with empty values in
    place of what could not be read and :attr:`JobRecord.damaged` saying which column and
    why (the first such column).

    Args:
        row: The row.
        decode: Turns a stored JSON column into data (``json.loads`` for text columns).

    .. versionchanged:: 0.10
       A damaged row is returned with ``damaged`` set instead of raising.
    """
    problems: list[str] = []

    def json_object(index: int, column: str, nullable: bool = False) -> Any:
        value = row[index]
        if value is None and nullable:
            return None
        try:
            data = decode(value)
        except (ValueError, TypeError, RecursionError) as exc:
            problems.append(f"{column}: {decode_failure(exc)}")
            return None if nullable else {}
        if data is None and not nullable:
            return {}
        if not isinstance(data, dict):
            problems.append(f"{column}: expected a JSON object, got {type(data).__name__}")
            return None if nullable else {}
        return data

    def number(index: int, column: str, kind: Callable[[Any], Any]) -> Any:
        try:
            return kind(row[index])
        except (ValueError, TypeError, OverflowError):
            what = "an integer" if kind is int else "a number"
            problems.append(f"{column}: expected {what}, got {str(row[index])[:50]!r}")
            return kind(0)

    entry_params = json_object(5, "entry_params")
    options = json_object(6, "options")
    state = json_object(7, "state_json", nullable=True)
    attempt = number(9, "attempt", int)
    created_at = number(11, "created_at", float)
    updated_at = number(12, "updated_at", float)
    checkpoint_seq = number(13, "checkpoint_seq", int) if len(row) > 13 else 0
    forked_from = json_object(14, "forked_from", nullable=True) if len(row) > 14 else None
    return JobRecord(
        job_id=row[0],
        flow_id=row[1],
        fingerprint=row[2],
        status=row[3],
        entry_routine_id=row[4],
        entry_params=dict(entry_params),
        options=dict(options),
        state=state,
        requested=row[8],
        attempt=attempt,
        worker=row[10],
        created_at=created_at,
        updated_at=updated_at,
        damaged=problems[0] if problems else None,
        checkpoint_seq=checkpoint_seq,
        forked_from=forked_from,
    )
