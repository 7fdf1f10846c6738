"""
Filter, Splitter, Aggregator and Batcher, inside real flows (sequential and concurrent).
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux import Flow
from routilux.exceptions import ExecutionContextError, SerializationError
from routilux_stdlib import Aggregator, Batcher, Filter, Splitter

from .conftest import Entry, Sink, build_flow, capture, received, run


class TestFilter:
    @pytest.mark.parametrize(
        ("config", "data", "kept", "rejected"),
        [
            ({}, [0, 1, "", "a"], [[1, "a"]], [[0, ""]]),
            ({"condition": "data > 2"}, [1, 3, 5], [[3, 5]], [[1]]),
            ({"condition": "data > 2"}, [3], [[3]], []),
            ({"condition": "data > 2"}, 1, [], [1]),
            ({"condition": "data > 2"}, 4, [4], []),
            (
                {"condition": {"ok": True}},
                [{"ok": True}, {"ok": False}],
                [[{"ok": True}]],
                [[{"ok": False}]],
            ),
            ({"condition": "data['k'] > 0"}, [{"k": 1}, {}], [[{"k": 1}]], [[{}]]),
            # .get() on a str is refused by the evaluator at run time: the item is rejected.
            ({"condition": "data.get('k') == 1"}, [{"k": 1}, "s"], [[{"k": 1}]], [["s"]]),
            ({"condition": "len(data) == 2", "split_lists": False}, [1, 2], [[1, 2]], []),
            ({"condition": lambda data: data % 2 == 0}, [1, 2], [[2]], [[1]]),
        ],
    )
    def test_table(
        self, config: dict[str, Any], data: Any, kept: list[Any], rejected: list[Any]
    ) -> None:
        """
        Lists are filtered item by item; other values are one item; errors reject.
        """
        f = Filter()
        f.set_config(**config)
        got = capture(f)
        f.input_slot.receive({"data": data})
        assert kept == [p["data"] for p in got["output"]]
        assert rejected == [p["data"] for p in got["rejected"]]

    def test_lambda_condition_serialization_error_path(self) -> None:
        """
        A lambda condition refuses to serialize; the error's path is the condition's.
        """
        f = Filter()
        f.set_config(condition=lambda data: True)
        with pytest.raises(SerializationError) as info:
            build_flow(f, "input").serialize()
        assert "routines.r.config.condition" == info.value.path

    def test_in_flow_uses_stats(self, strategy: str) -> None:
        """
        Inside a job the condition sees the job's shared data as stats.
        """
        f = Filter()
        f.set_config(condition="data >= stats.get('min', 0)")
        flow = build_flow(f, "input", strategy=strategy)
        run(flow, {"data": [1, 5, 10]})
        assert [[1, 5, 10]] == [p["data"] for p in received(flow)["output"]]
        flow.shutdown()


class TestSplitter:
    @pytest.mark.parametrize(
        ("config", "data", "items"),
        [
            ({}, [1, 2, 3], [1, 2, 3]),
            ({}, (1, 2), [1, 2]),
            ({}, "one", ["one"]),
            ({}, [], []),
            ({"field": "rows"}, {"rows": ["a", "b"], "x": 1}, ["a", "b"]),
            ({"field": "rows"}, {"x": 1}, []),
        ],
    )
    def test_table(self, config: dict[str, Any], data: Any, items: list[Any]) -> None:
        """
        One item event per element with index and total, then done.
        """
        s = Splitter()
        s.set_config(**config)
        got = capture(s)
        s.input_slot.receive({"data": data})
        assert items == [p["data"] for p in got["item"]]
        assert list(range(len(items))) == [p["index"] for p in got["item"]]
        assert [{"count": len(items), "total": len(items)}] == got["done"]


def split_batch_flow(size: int, strategy: str) -> tuple[Flow, Sink]:
    flow = Flow(execution_strategy=strategy, max_workers=2)
    flow.add_routine(Entry(), "entry")
    flow.add_routine(Splitter(), "split")
    b = Batcher()
    b.set_config(batch_size=size)
    flow.add_routine(b, "batch")
    sink = Sink()
    flow.add_routine(sink, "sink")
    flow.connect("entry", "out", "split", "input")
    flow.connect("split", "item", "batch", "input")
    flow.connect("split", "done", "batch", "flush")
    flow.connect("batch", "batch", "sink", "input")
    return flow, sink


class TestBatcher:
    @pytest.mark.parametrize(
        ("size", "n", "batches"),
        [(2, 5, [2, 2, 1]), (2, 4, [2, 2]), (10, 3, [3]), (1, 2, [1, 1]), (3, 0, [])],
    )
    def test_batches_and_flush(self, size: int, n: int, batches: list[int], strategy: str) -> None:
        """
        Full batches as items arrive; the flush slot (wired to Splitter.done) sends the rest,
        even when a concurrent job delivers the flush before the last items.
        """
        flow, sink = split_batch_flow(size, strategy)
        job = flow.execute("entry", {"data": list(range(n))})
        assert "completed" == job.status
        got = sorted(sink.received, key=lambda p: p["index"])
        assert batches == [len(p["items"]) for p in got]
        assert list(range(n)) == sorted(i for p in got for i in p["items"])
        finals = [False] * (n // size) + ([True] if n % size else [])
        assert finals == [p["final"] for p in got]
        flow.shutdown()

    def test_state_is_per_job(self, strategy: str) -> None:
        """
        Concurrent jobs of one flow batch independently; nothing is kept on the routine.
        """
        flow, sink = split_batch_flow(3, strategy)
        jobs = [flow.submit("entry", {"data": [j] * 4}) for j in range(4)]
        for job in jobs:
            assert job.wait_for_completion(10)
        assert 8 == len(sink.received)
        for job in jobs:
            state = job.get_shared_data("routilux_stdlib.Batcher/batch")
            assert 2 == state["index"]
        assert not [k for k in vars(flow.routines["batch"]) if "buffer" in k]
        flow.shutdown()

    def test_emit_empty_final(self) -> None:
        """
        emit_empty_final sends an empty final batch when nothing is left.
        """
        flow, sink = split_batch_flow(2, "sequential")
        flow.routines["batch"].set_config(emit_empty_final=True)
        flow.execute("entry", {"data": [1, 2]})
        assert [([1, 2], False), ([], True)] == [(p["items"], p["final"]) for p in sink.received]

    def test_needs_a_job(self) -> None:
        """
        Outside a job there is nowhere to keep the state.
        """
        with pytest.raises(ExecutionContextError):
            Batcher()._handle_input(data=1)


def fan_in_flow(strategy: str, **config: Any) -> tuple[Flow, Sink]:
    flow = Flow(execution_strategy=strategy, max_workers=2)
    flow.add_routine(Entry(), "entry")
    for name in ("a", "b", "c"):
        flow.add_routine(Entry(), name)
        flow.connect("entry", "out", name, "trigger")
    agg = Aggregator()
    agg.set_config(**config)
    flow.add_routine(agg, "agg")
    for name in ("a", "b"):
        flow.connect(name, "out", "agg", "input")
    flow.connect("c", "out", "agg", "flush")
    sink = Sink()
    flow.add_routine(sink, "sink")
    flow.connect("agg", "output", "sink", "input")
    return flow, sink


class TestAggregator:
    def test_waits_for_all_connected_sources(self, strategy: str) -> None:
        """
        With no count, it emits once every connected upstream has sent.
        """
        flow, sink = fan_in_flow(strategy)
        flow.execute("entry", {"data": 7})
        (out,) = sink.received
        assert "all_sources" == out["reason"]
        assert ["a", "b"] == sorted(out["sources"])
        assert {"a": 7, "b": 7} == out["by_source"]
        assert 2 == out["count"]
        flow.shutdown()

    @pytest.mark.parametrize(
        ("config", "reasons"),
        [
            ({"count": 1}, ["count", "count"]),
            ({"count": 5}, ["flush"]),
            ({"sources": ["a", "z"]}, ["flush"]),
            ({"sources": ["a"]}, ["all_sources", "flush"]),
        ],
    )
    def test_config(self, config: dict[str, Any], reasons: list[str]) -> None:
        """
        count, sources, and the flush slot (here wired to a third upstream).
        """
        flow, sink = fan_in_flow("sequential", **config)
        flow.execute("entry", {"data": 1})
        assert reasons == [p["reason"] for p in sink.received]

    def test_source_key(self) -> None:
        """
        source_key takes the sender's name from the payload.
        """
        flow = Flow()
        flow.add_routine(Entry(), "entry")
        agg = Aggregator()
        agg.set_config(sources=["x", "y"], source_key="who")
        flow.add_routine(agg, "agg")
        flow.add_routine(Splitter(), "split")
        flow.connect("entry", "out", "split", "input")
        flow.connect("split", "item", "agg", "input", param_mapping={"data": "who"})
        sink = Sink()
        flow.add_routine(sink, "sink")
        flow.connect("agg", "output", "sink", "input")
        flow.execute("entry", {"data": ["x", "y"]})
        assert [["x", "y"]] == [p["sources"] for p in sink.received]
