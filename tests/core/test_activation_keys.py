"""
The idempotency key of each activation of a job (``ctx.idempotency_key``): one per
activation, the entry's included, in the order the job queued them.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Relay, within

from routilux import Flow, JobState, Routine


class _Keyed(Relay):
    """A Relay that also keeps the idempotency key of each activation it runs."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__()
        self.keys = keys

    def take(self, value: Any = None, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None and ctx.idempotency_key is not None
        self.keys.append(ctx.idempotency_key)
        super().take(value)


class _KeyedEntry(Routine):
    def __init__(self, keys: list[str]) -> None:
        super().__init__()
        self.keys = keys
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None and ctx.idempotency_key is not None
        self.keys.append(ctx.idempotency_key)
        self.emit("out", value=1)


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_each_activation_of_a_job_has_its_own_key(strategy: str) -> None:
    """The entry and the activations after it get distinct keys "<job id>:0", ":1"..."""
    keys: list[str] = []
    flow = Flow("keys", strategy)
    flow.add_routine(_KeyedEntry(keys), "e")
    flow.add_routine(_Keyed(keys), "r0")
    flow.add_routine(_Keyed(keys), "r1")
    flow.connect("e", "out", "r0", "input")
    flow.connect("r0", "out", "r1", "input")
    try:
        js = within(10, "execute to return", flow.execute, "e")
    finally:
        flow.shutdown(wait=True, timeout=3)
    assert "completed" == js.status
    assert [f"{js.job_id}:{n}" for n in range(3)] == keys


class _PausingEntry(_KeyedEntry):
    """Emits, then pauses its own job: the activation it emitted waits in pending_tasks."""

    def fire(self, **_: Any) -> None:
        super().fire()
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.flow.pause(ctx.job_state, reason="ask")


def _keyed_flow(strategy: str, keys: list[str], entry: Routine) -> Flow:
    flow = Flow("keys", strategy)
    flow.add_routine(entry, "e")
    flow.add_routine(_Keyed(keys), "r0")
    flow.add_routine(_Keyed(keys), "r1")
    flow.connect("e", "out", "r0", "input")
    flow.connect("r0", "out", "r1", "input")
    return flow


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_job_resumed_from_its_data_never_reuses_a_key(strategy: str) -> None:
    """A paused job loaded from its data and resumed on another flow keeps the key of its
    pending activation, and what runs after it gets keys the job never gave out."""
    keys: list[str] = []
    first = _keyed_flow(strategy, keys, _PausingEntry(keys))
    try:
        paused = within(10, "execute to return", first.execute, "e")
    finally:
        first.shutdown(wait=True, timeout=3)
    assert "paused" == paused.status
    data = paused.serialize()
    assert [1] == [t["seq"] for t in data["pending_tasks"]]
    loaded = JobState()
    loaded.deserialize(data)
    second = _keyed_flow(strategy, keys, _KeyedEntry(keys))
    try:
        second.resume(loaded)
        assert loaded.wait_for_completion(10), f"resumed job still {loaded.status}"
    finally:
        second.shutdown(wait=True, timeout=3)
    assert "completed" == loaded.status
    assert [f"{loaded.job_id}:{n}" for n in range(3)] == keys
