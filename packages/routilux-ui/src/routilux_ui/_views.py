"""
What the pages and the API show of a job, as plain JSON-able data.

Its row, its detail, its routines' states and its timeline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from routilux.graph import STATE_STYLES, render_dot, routine_states
from routilux.store import JobRecord

from ._inbox import Question, questions_of


__all__ = [
    "ROUTINE_STATES",
    "STATUSES",
    "job_detail",
    "job_row",
    "preview",
    "timeline",
]

STATUSES: tuple[str, ...] = (
    "pending",
    "queued",
    "running",
    "paused",
    "completed",
    "failed",
    "cancelled",
)
"""The job statuses the jobs page counts, in the order it shows them."""

ROUTINE_STATES: dict[str, str] = {name: style.legend for name, style in STATE_STYLES.items()}
"""A routine's state in the picture -> its legend text."""


def fmt_time(ts: float) -> str:
    """
    Return a store timestamp (seconds since the epoch) as local ``YYYY-MM-DD HH:MM:SS``.
    """
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


def preview(value: Any, limit: int = 160) -> str:
    """
    Return ``value`` as compact JSON, cut to ``limit`` characters.
    """
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def job_row(record: JobRecord, errors: int | None) -> dict[str, Any]:
    """
    Return one row of the jobs list.
    """
    return {
        "job_id": record.job_id,
        "flow_id": record.flow_id,
        "status": "damaged" if record.damaged is not None else record.status,
        "entry_routine_id": record.entry_routine_id,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "errors": errors,
        "requested": record.requested,
        "attempt": record.attempt,
        "damaged": record.damaged,
    }


def _list(state: Mapping[str, Any], key: str) -> list[Any]:
    value = state.get(key)
    return value if isinstance(value, list) else []


def job_detail(
    record: JobRecord,
    flow_data: Mapping[str, Any],
    offered: Mapping[str, bool],
    note: str | None = None,
) -> dict[str, Any]:
    """
    Return everything the job's page shows (and ``GET /api/jobs/{id}`` returns); ``note``
    says why the last run this page started did not run, if it did not.
    """
    state: Mapping[str, Any] = record.state or {}
    questions: list[Question] = (
        questions_of(record.job_id, record.flow_id, state) if record.status == "paused" else []
    )
    waiting = {q.routine_id: q for q in questions}
    states = routine_states(flow_data, state, waiting)
    routines = flow_data.get("routines")
    routines = routines if isinstance(routines, dict) else {}
    stored_states = state.get("routine_states")
    return {
        "job_id": record.job_id,
        "flow_id": record.flow_id,
        "fingerprint": record.fingerprint,
        "status": record.status,
        "requested": record.requested,
        "attempt": record.attempt,
        "worker": record.worker,
        "entry_routine_id": record.entry_routine_id,
        "entry_params": record.entry_params,
        "options": record.options,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "checkpoint_seq": state.get("checkpoint_seq"),
        "routines": [
            {
                "routine_id": rid,
                "type": spec.get("type") if isinstance(spec, dict) else None,
                "state": states[rid],
            }
            for rid, spec in routines.items()
        ],
        "routine_states": stored_states if isinstance(stored_states, dict) else {},
        "history": _list(state, "execution_history"),
        "outputs": _list(state, "output_log"),
        "errors": _list(state, "errors"),
        "pending_tasks": _list(state, "pending_tasks"),
        "failed_tasks": _list(state, "failed_tasks"),
        "pause_points": _list(state, "pause_points"),
        "shared_data": state.get("shared_data") or {},
        "waiting": [q.as_json() for q in questions],
        "actions": dict(offered),
        "note": note,
        "dot": render_dot(flow_data, states),
    }


_TIMELINE: tuple[tuple[str, str, str, str, str], ...] = (
    # (detail key, kind, routine key, what key, data key)
    ("history", "event", "routine_id", "event_name", "data"),
    ("outputs", "output", "routine_id", "output_type", "data"),
    ("pause_points", "pause", "current_routine_id", "reason", "checkpoint"),
)
"""Where the timeline's items come from."""


def timeline(detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    """
    Return the job's history (with its errors), outputs and pause points as one list in
    time order: ``{"time", "kind", "routine_id", "what", "data"}``. An error's traceback is
    left out (the errors section shows it).
    """
    items: list[dict[str, Any]] = []
    for key, kind, routine_key, what_key, data_key in _TIMELINE:
        for record in detail[key]:
            if not isinstance(record, dict):
                continue
            item = {
                "time": str(record.get("timestamp", "")),
                "kind": kind,
                "routine_id": record.get(routine_key),
                "what": record.get(what_key) or kind,
                "data": record.get(data_key),
            }
            if kind == "event" and item["what"] == "error":
                item["kind"] = "error"
                if isinstance(item["data"], dict):
                    item["data"] = {k: v for k, v in item["data"].items() if k != "traceback"}
            items.append(item)
    items.sort(key=lambda item: item["time"])
    return items
