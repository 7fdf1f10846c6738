"""
Shared helpers of the routilux-stdlib tests: an entry routine, a collecting sink, flows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

import pytest

from routilux import Flow, JobState, Routine, Slot
from routilux.registry import register_routine


@register_routine(name="tests.stdlib.Entry")
class Entry(Routine):
    """
    A tiny entry routine: its ``trigger`` slot emits ``out`` with the entry params.
    """

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self._fire)
        self.define_event("out")

    def _fire(self, **kwargs: Any) -> None:
        self.emit("out", **kwargs)


@register_routine(name="tests.stdlib.Sink")
class Sink(Routine):
    """
    Collects every payload its ``input`` slot receives (test-side bookkeeping only).
    """

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.define_slot("input", self._collect)

    def _collect(self, **kwargs: Any) -> None:
        with self._lock:
            self.received.append(kwargs)


def capture(routine: Routine, *events: str) -> dict[str, list[dict[str, Any]]]:
    """
    Connect a capturing bare slot to each event (all events by default) for standalone use.
    """
    got: dict[str, list[dict[str, Any]]] = {}
    for name in events or tuple(routine._events):
        bucket: list[dict[str, Any]] = []
        got[name] = bucket
        routine._events[name].connect(
            Slot(f"cap_{name}", None, lambda bucket=bucket, **kw: bucket.append(kw))
        )
    return got


def build_flow(
    routine: Routine,
    slot: str,
    events: Iterable[str] | None = None,
    strategy: str = "sequential",
    routine_id: str = "r",
) -> Flow:
    """
    entry.out -> routine.<slot>; each event of the routine -> its own Sink ``sink_<event>``.
    """
    flow = Flow(flow_id="stdlib-test", execution_strategy=strategy, max_workers=2)
    flow.add_routine(Entry(), "entry")
    flow.add_routine(routine, routine_id)
    flow.connect("entry", "out", routine_id, slot)
    for event in events if events is not None else list(routine._events):
        flow.add_routine(Sink(), f"sink_{event}")
        flow.connect(routine_id, event, f"sink_{event}", "input")
    return flow


def received(flow: Flow) -> dict[str, list[dict[str, Any]]]:
    """
    The payloads each sink got, by event name.
    """
    return {
        rid[len("sink_") :]: list(r.received)  # type: ignore[attr-defined]
        for rid, r in flow.routines.items()
        if rid.startswith("sink_")
    }


def roundtrip(flow: Flow) -> Flow:
    """
    Serialize ``flow`` through JSON and rebuild it in a new Flow.
    """
    doc = json.loads(json.dumps(flow.serialize()))
    other = Flow()
    other.deserialize(doc)
    return other


def run(flow: Flow, *payloads: dict[str, Any]) -> list[JobState]:
    """
    Execute one job per payload and return their JobStates.
    """
    return [flow.execute("entry", p) for p in payloads]


@pytest.fixture(params=["sequential", "concurrent"], ids=["sequential", "concurrent"])
def strategy(request: pytest.FixtureRequest) -> str:
    """
    Both execution strategies.
    """
    return str(request.param)
