"""
The audit trail: every JobState change as one JSON line (or structlog event), and the
replay that rebuilds a JobState from those records.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from routilux import ExecutionRecord, JobState, hookimpl, lifecycle

from ._encode import dumps_line, plain
from ._writer import LineFile


if TYPE_CHECKING:
    from routilux import Flow, JobStateChange


__all__ = ["AuditTrail", "read_audit_trail", "rebuild_job_state"]

JOB_STARTED = "job_started"
"""The ``kind`` of the record written when a job starts (its flow and entry routine)."""


class AuditTrail:
    """
    A plugin that records every change of every JobState: to a JSON-lines file when given a
    ``path``, else as structlog events.

    Each record is a dict with ``job_id``, ``flow_id``, ``kind`` (a
    :class:`routilux.job_state.ChangeKind` value, or ``"job_started"``), ``key``,
    ``routine_id``, ``old``, ``new`` and ``changed_at`` (a ``job_started`` record also has the
    job's ``history_limit``). Values are stored as plain JSON data.
    A job's records come in the order its changes happened (they are written while the job's
    lock is held), so :func:`rebuild_job_state` rebuilds the job from them.

    Args:
        path: The JSON-lines file to append to. ``None`` logs to structlog instead.
        logger: The structlog logger (without ``path``); by default
            ``structlog.get_logger("routilux_handlers.audit")``.
        event: The structlog event name.
        fsync: Force each line to disk (with ``path``).

    Example:
        >>> audit = AuditTrail("audit.jsonl")  # doctest: +SKIP
        >>> routilux.register_plugin(audit)  # doctest: +SKIP
        >>> job = flow.execute("source")  # doctest: +SKIP
        >>> audit.rebuild(job.job_id).shared_data == job.shared_data  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        logger: Any = None,
        event: str = "routilux_job_state_changed",
        fsync: bool = False,
    ) -> None:
        self._file = LineFile(path, fsync) if path is not None else None
        self._logger: Any = None
        if self._file is None:
            self._logger = (
                logger if logger is not None else structlog.get_logger("routilux_handlers.audit")
            )
        #: The structlog event name.
        self.event = event

    def __repr__(self) -> str:
        where = str(self._file.path) if self._file is not None else "structlog"
        return f"AuditTrail({where!r})"

    @property
    def path(self) -> Path | None:
        """
        The JSON-lines file, or ``None`` when logging to structlog.
        """
        return self._file.path if self._file is not None else None

    def _emit(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(dumps_line(record))
        else:
            self._logger.info(self.event, **plain(record))

    @hookimpl
    def routilux_job_started(self, flow: Flow, job_state: JobState) -> None:
        """
        Record the job's flow and entry routine.
        """
        self._emit(
            {
                "job_id": job_state.job_id,
                "flow_id": flow.flow_id,
                "kind": JOB_STARTED,
                "key": None,
                "routine_id": job_state.current_routine_id,
                "old": None,
                "new": job_state.current_routine_id,
                "changed_at": datetime.now(),
                "history_limit": job_state.history_limit,
            }
        )

    @hookimpl
    def routilux_job_state_changed(self, flow: Flow, change: JobStateChange) -> None:
        """
        Record one change.
        """
        self._emit(
            {
                "job_id": change.job_id,
                "flow_id": flow.flow_id,
                "kind": change.kind.value,
                "key": change.key,
                "routine_id": change.routine_id,
                "old": change.old,
                "new": change.new,
                "changed_at": change.timestamp,
            }
        )

    def records(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """
        Read this trail's file (optionally only one job's records).

        Raises:
            ValueError: The trail logs to structlog (collect the events there instead).
        """
        if self._file is None:
            msg = "this AuditTrail logs to structlog: give the events to rebuild_job_state()"
            raise ValueError(msg)
        found = read_audit_trail(self._file.path)
        return [r for r in found if job_id is None or r.get("job_id") == job_id]

    def rebuild(self, job_id: str | None = None) -> JobState:
        """
        Rebuild a job from this trail's file (see :func:`rebuild_job_state`).
        """
        return rebuild_job_state(self.records(job_id), job_id)

    def close(self) -> None:
        """
        Close the file (a later change opens it again).
        """
        if self._file is not None:
            self._file.close()


def read_audit_trail(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """
    Yield the records of a JSON-lines audit file, oldest first.
    """
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _record(item: Any) -> ExecutionRecord:
    return ExecutionRecord(
        str(item.get("routine_id", "")),
        str(item.get("event_name", "")),
        dict(item.get("data") or {}),
        datetime.fromisoformat(item["timestamp"]),
    )


def rebuild_job_state(records: Iterable[Mapping[str, Any]], job_id: str | None = None) -> JobState:
    """
    Replay audit records into a new JobState: status, entry routine, routine states, shared
    data, shared log, history, metadata, deferred events, pause points, pending and failed
    tasks and output log (not the error records: ``errors`` is rebuilt from a job document).

    ``records`` may come from the file (:func:`read_audit_trail`) or be the events an
    application collected from structlog (extra keys such as ``event`` are ignored).

    Args:
        records: Audit records in the order they were written.
        job_id: The job to rebuild; needed when the records hold several jobs.

    Raises:
        ValueError: The records hold several jobs and ``job_id`` is not given, or none.
    """
    wanted = [r for r in records if job_id is None or r.get("job_id") == job_id]
    jobs = {r.get("job_id") for r in wanted}
    if len(jobs) != 1:
        what = "no records" if not jobs else f"records of {len(jobs)} jobs"
        msg = f"cannot rebuild one job from {what}; pass job_id"
        raise ValueError(msg)
    # A bounded history drops on replay what it dropped in the job (and counts it).
    limits = [r.get("history_limit") for r in wanted if r.get("kind") == JOB_STARTED]
    js = JobState(job_id=str(jobs.pop()), history_limit=limits[0] if limits else None)
    for r in wanted:
        _apply(js, r)
    return js


def _apply(js: JobState, r: Mapping[str, Any]) -> None:
    kind: Any = r.get("kind")
    key: Any = r.get("key")
    old: Any = r.get("old")
    new: Any = r.get("new")
    if r.get("flow_id"):
        js.flow_id = r["flow_id"]
    if kind == JOB_STARTED:
        js.current_routine_id = new
    elif kind == "status":
        lifecycle.restore(js, new)
    elif kind == "routine_state":
        js.routine_states[key] = dict(new)
    elif kind == "shared_data":
        js.shared_data[key] = new
    elif kind == "shared_log":
        js.shared_log.append(new)
    elif kind == "history":
        if old is None:  # one record appended
            js.execution_history.append(_record(new))
        else:  # any other change: the records after it
            js.execution_history = [_record(r) for r in new]
    elif kind == "metadata":
        js.metadata[key] = new
    elif kind == "deferred_event":
        if old is None:
            js.deferred_events.append(new)
        else:
            js.deferred_events = list(new)
    elif kind == "pause_point":
        js.pause_points.append(new)
        js.checkpoint = new.get("checkpoint")
    elif kind in ("pending_tasks", "failed_tasks"):
        tasks = getattr(js, kind)
        if old is None:
            tasks.extend(new)
        else:
            setattr(js, kind, list(new))
    elif kind == "output":
        js.output_log.append(new)
