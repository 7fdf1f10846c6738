"""
ExecutionTracker: per-job timings of routine activations and the events they emitted.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime
from typing import Any


__all__ = ["ExecutionTracker"]


class ExecutionTracker:
    """
    Records, for one job, each routine activation's start, end, status and duration, and
    each emitted event; and summarises them.

    Args:
        flow_id: The flow of the job.
        limit: Keep at most this many records per list (the most recent), or ``None``.
    """

    def __init__(self, flow_id: str = "", limit: int | None = None) -> None:
        #: The flow of the job.
        self.flow_id = flow_id
        #: Activation records by flow routine id, oldest first.
        self.routine_executions: dict[str, list[dict[str, Any]]] = {}
        #: Emitted events, oldest first.
        self.event_flow: list[dict[str, Any]] = (
            deque(maxlen=limit) if limit else []  # type: ignore[assignment]  # bounded list
        )
        #: Reserved for summary metrics (kept empty, as in the original).
        self.performance_metrics: dict[str, Any] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ExecutionTracker[{self.flow_id}]"

    def record_routine_start(self, routine_id: str, params: dict[str, Any] | None = None) -> None:
        """
        Record that an activation of ``routine_id`` started.
        """
        entry = {
            "routine_id": routine_id,
            "start_time": datetime.now().isoformat(),
            "params": params or {},
            "status": "running",
        }
        with self._lock:
            records = self.routine_executions.get(routine_id)
            if records is None:
                records = deque(maxlen=self._limit) if self._limit else []  # type: ignore[assignment]
                self.routine_executions[routine_id] = records
            records.append(entry)

    def record_routine_end(
        self,
        routine_id: str,
        status: str = "completed",
        result: Any = None,
        error: str | None = None,
    ) -> None:
        """
        Complete the last start record of ``routine_id`` (nothing happens without one).
        """
        end = datetime.now()
        with self._lock:
            records = self.routine_executions.get(routine_id)
            if not records:
                return
            entry = records[-1]
            entry["end_time"] = end.isoformat()
            entry["status"] = status
            if result is not None:
                entry["result"] = result
            if error is not None:
                entry["error"] = error
            start = datetime.fromisoformat(entry["start_time"])
            entry["execution_time"] = (end - start).total_seconds()

    def _record_activation(
        self, routine_id: str, start: float, end: float, status: str, error: str | None
    ) -> None:
        # One call per finished activation (the scheduler's fast path): start and end as
        # epoch seconds.
        entry: dict[str, Any] = {
            "routine_id": routine_id,
            "start_time": datetime.fromtimestamp(start).isoformat(),
            "end_time": datetime.fromtimestamp(end).isoformat(),
            "params": {},
            "status": status,
            "execution_time": end - start,
        }
        if error is not None:
            entry["error"] = error
        with self._lock:
            records = self.routine_executions.get(routine_id)
            if records is None:
                records = deque(maxlen=self._limit) if self._limit else []  # type: ignore[assignment]
                self.routine_executions[routine_id] = records
            records.append(entry)

    def record_event(
        self,
        source_routine_id: str,
        event_name: str,
        target_routine_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """
        Record an emitted event.
        """
        entry = {
            "timestamp": datetime.now().isoformat(),
            "source_routine_id": source_routine_id,
            "event_name": event_name,
            "target_routine_id": target_routine_id,
            "data": data or {},
        }
        with self._lock:
            self.event_flow.append(entry)

    def get_routine_performance(self, routine_id: str) -> dict[str, Any] | None:
        """
        Summarise the activations of ``routine_id``: counts, success rate and execution
        times; ``None`` when it has none.
        """
        with self._lock:
            records = list(self.routine_executions.get(routine_id) or ())
        if not records:
            return None
        total = len(records)
        completed = sum(1 for r in records if r.get("status") == "completed")
        failed = sum(1 for r in records if r.get("status") == "failed")
        times = [r["execution_time"] for r in records if "execution_time" in r]
        return {
            "total_executions": total,
            "completed": completed,
            "failed": failed,
            "success_rate": completed / total,
            "avg_execution_time": sum(times) / len(times) if times else 0,
            "min_execution_time": min(times) if times else 0,
            "max_execution_time": max(times) if times else 0,
        }

    def get_flow_performance(self) -> dict[str, Any]:
        """
        Summarise the job: routines seen, events emitted, the sum of the routines' average
        execution times and their mean.
        """
        with self._lock:
            routine_ids = list(self.routine_executions)
            total_events = len(self.event_flow)
        averages = []
        for rid in routine_ids:
            perf = self.get_routine_performance(rid)
            if perf and perf["avg_execution_time"] > 0:
                averages.append(perf["avg_execution_time"])
        total = sum(averages)
        return {
            "total_routines": len(routine_ids),
            "total_events": total_events,
            "total_execution_time": total,
            "avg_routine_time": total / len(averages) if averages else 0,
        }

    def serialize(self) -> dict[str, Any]:
        """
        Return the tracker as plain data.
        """
        with self._lock:
            return {
                "_type": "ExecutionTracker",
                "flow_id": self.flow_id,
                "routine_executions": {k: [dict(r) for r in v] for k, v in self.routine_executions.items()},
                "event_flow": [dict(e) for e in self.event_flow],
                "performance_metrics": dict(self.performance_metrics),
            }

    def deserialize(self, data: dict[str, Any]) -> None:
        """
        Restore the tracker from :meth:`serialize` output; ``data`` is not changed.
        """
        from .serialization import load_tracker_into

        load_tracker_into(self, data)
