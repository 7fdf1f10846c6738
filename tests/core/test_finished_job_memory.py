"""
What a finished job keeps: its history packed, so a retained JobState costs about half
what its records would cost as objects (``benchmarks/bench_memory.py`` measures it closer).
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from helpers import Emitter, within

from routilux import Flow, Routine


class _Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        pass


def test_a_finished_job_keeps_its_history_packed() -> None:
    """A finished job of 1,000 emits retains under 340 bytes per emit (about 240 with its
    history packed, 450 with one record object per emit)."""
    n = 1000
    flow = Flow("memory", "sequential")
    flow.add_routine(Emitter(), "e")
    flow.add_routine(_Sink(), "s")
    flow.connect("e", "out", "s", "input")
    tracemalloc.start()
    try:
        js = within(10, "execute to return", flow.execute, "e", {"items": range(n)})
        flow.shutdown(wait=True, timeout=3)
        del flow
        gc.collect()
        with_job = tracemalloc.get_traced_memory()[0]
        assert "completed" == js.status
        assert n + 2 == len(js.execution_history.entries())
        del js
        gc.collect()
        without = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_emit = (with_job - without) / n
    assert per_emit < 340, f"a finished job retains {per_emit:.0f} bytes per emit"
