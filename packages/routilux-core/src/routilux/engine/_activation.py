"""
An activation of a job, and activations as plain data (pending and failed tasks).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs


if TYPE_CHECKING:
    from routilux.engine._timeouts import Watch
    from routilux.model._connection import Connection
    from routilux.model._definition import FlowDefinition
    from routilux.model._slot import Slot

__all__ = ["Activation", "activation_of", "as_failed", "as_pending", "fan_out"]


@attrs.define(eq=False, slots=True)
class Activation:
    """
    One delivery of data to one slot of one routine of a job.
    """

    routine_id: str | None
    slot: Slot
    #: The payload as emitted (parameter mapping is applied when it runs).
    data: dict[str, Any]
    connection: Connection | None
    #: The job-wide sequence number (for idempotency keys).
    seq: int
    #: Retries already made for this activation.
    attempt: int = 0
    #: True for the entry routine's trigger.
    entry: bool = False
    #: When it was made (epoch seconds): its pending task's ``created_at``.
    created: float = attrs.field(factory=time.time)
    #: The watch of its timeout while it runs with one (see ``_timeouts``), else ``None``.
    watch: Watch | None = None


def fan_out(
    targets: list[tuple[str | None, Slot, Connection | None]], payload: dict[str, Any], seq: int
) -> list[Activation]:
    """
    The activations of one emit: one per target (flow routine id, slot, connection), with
    sequence numbers from ``seq``. A lone target gets ``payload`` itself, each of several
    its own copy.
    """
    if len(targets) == 1:
        rid, slot, conn = targets[0]
        return [Activation(rid, slot, payload, conn, seq)]
    return [
        Activation(rid, slot, dict(payload), conn, seq + i)
        for i, (rid, slot, conn) in enumerate(targets)
    ]


def as_pending(act: Activation) -> dict[str, Any]:
    """
    Describe a queued activation as plain data (for ``JobState.pending_tasks``).
    """
    conn = act.connection
    event = conn.source_event if conn is not None else None
    return {
        "slot_routine_id": act.routine_id,
        "slot_name": act.slot.name,
        "data": act.data,
        "connection_source_routine_id": conn.source_routine_id if conn is not None else None,
        "connection_source_event_name": event.name if event is not None else None,
        "connection_target_routine_id": conn.target_routine_id if conn is not None else None,
        "connection_target_slot_name": act.slot.name if conn is not None else None,
        "param_mapping": dict(conn.param_mapping) if conn is not None else {},
        "priority": 2,
        "retry_count": act.attempt,
        "max_retries": 0,
        "created_at": datetime.fromtimestamp(act.created).isoformat(),
        "seq": act.seq,
        "entry": act.entry,
    }


def as_failed(act: Activation, error_type: str, message: str) -> dict[str, Any]:
    """
    Describe a failed activation as plain data (for ``JobState.failed_tasks``): its
    pending-task form with the error that failed it.
    """
    return {**as_pending(act), "error": {"type": error_type, "message": message}}


def activation_of(
    flow: FlowDefinition, task: dict[str, Any], seq: int, *, fresh: bool = False
) -> Activation:
    """
    Rebuild an activation numbered ``seq`` from :func:`as_pending` data (its routine and
    slot were checked against ``flow`` by ``Flow.resume``/``Flow.retry``); ``fresh``
    starts its retry count from 0 (a retry of the job is a new attempt).
    """
    rid = task["slot_routine_id"]
    slot = flow.routines[rid].get_slot(task["slot_name"])
    assert slot is not None  # checked before the job was reopened
    conn = flow.connection_between(
        task.get("connection_source_routine_id"),
        task.get("connection_source_event_name"),
        rid,
        slot.name,
    )
    attempt = 0 if fresh else task.get("retry_count", 0)
    return Activation(
        rid,
        slot,
        dict(task.get("data") or {}),
        conn,
        seq,
        attempt if isinstance(attempt, int) else 0,
        bool(task.get("entry")),
        _created(task.get("created_at")),
    )


def _created(text: Any) -> float:
    # A pending task's creation time as epoch seconds (now when it has none readable).
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    return time.time()
