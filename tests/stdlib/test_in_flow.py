"""
Every built-in inside a real flow, sequential and concurrent, before and after a Flow round trip.
"""

from __future__ import annotations

from typing import Any

import pytest

import routilux_stdlib as std
from routilux import Routine

from .conftest import build_flow, received, roundtrip, run


def _router() -> Routine:
    r = std.ConditionalRouter()
    r.add_route("big", "data > 10")
    return r


def _configured(cls: type[Routine], **config: Any) -> Any:
    def make() -> Routine:
        r = cls()
        r.set_config(**config)
        return r

    return make


# (factory, slot, entry payload, event, a function of what that event's sink received)
CASES: list[tuple[str, Any, str, dict[str, Any], str, Any]] = [
    (
        "TextClipper",
        _configured(std.TextClipper, max_length=5),
        "input",
        {"data": "a\nbbbbbbbb"},
        "output",
        lambda got: got[0]["was_clipped"],
    ),
    (
        "TextRenderer",
        std.TextRenderer,
        "input",
        {"data": {"a": 1}},
        "output",
        lambda got: got[0]["rendered_text"] == "<a>1</a>",
    ),
    (
        "ResultExtractor",
        std.ResultExtractor,
        "input",
        {"data": '{"a": 1}'},
        "output",
        lambda got: got[0]["extracted_result"] == {"a": 1},
    ),
    (
        "TimeProvider",
        _configured(std.TimeProvider, timezone="UTC"),
        "request",
        {},
        "output",
        lambda got: got[0]["datetime"].endswith("+00:00"),
    ),
    (
        "DataFlattener",
        std.DataFlattener,
        "input",
        {"data": {"a": {"b": 1}}},
        "output",
        lambda got: got[0]["flattened_data"] == {"a.b": 1},
    ),
    (
        "DataTransformer",
        _configured(std.DataTransformer, transformations=["strip", "uppercase"]),
        "input",
        {"data": " x "},
        "output",
        lambda got: got[0]["transformed_data"] == "X",
    ),
    (
        "DataValidator",
        _configured(std.DataValidator, required_fields=["id"]),
        "input",
        {"data": {"x": 1}},
        "invalid",
        lambda got: got[0]["errors"] == ["Required field 'id' is missing"],
    ),
    (
        "ConditionalRouter",
        _router,
        "input",
        {"data": 11},
        "big",
        lambda got: got[0]["route"] == "big",
    ),
    (
        "Filter",
        _configured(std.Filter, condition="data % 2 == 0"),
        "input",
        {"data": [1, 2, 4]},
        "output",
        lambda got: got[0]["data"] == [2, 4],
    ),
    (
        "Splitter",
        std.Splitter,
        "input",
        {"data": [1, 2, 3]},
        "item",
        lambda got: sorted(p["data"] for p in got) == [1, 2, 3],
    ),
    (
        "Batcher",
        _configured(std.Batcher, batch_size=1),
        "input",
        {"data": 9},
        "batch",
        lambda got: got[0]["items"] == [9],
    ),
    (
        "Aggregator",
        _configured(std.Aggregator, count=1),
        "input",
        {"data": 5},
        "output",
        lambda got: got[0]["items"] == [5] and got[0]["sources"] == ["entry"],
    ),
]


@pytest.mark.parametrize(
    ("name", "factory", "slot", "payload", "event", "check"), CASES, ids=[c[0] for c in CASES]
)
@pytest.mark.parametrize("through_json", [False, True], ids=["built", "roundtrip"])
def test_routine_in_flow(
    name: str,
    factory: Any,
    slot: str,
    payload: dict[str, Any],
    event: str,
    check: Any,
    through_json: bool,
    strategy: str,
) -> None:
    """
    The routine behaves the same in a built flow and in one rebuilt from its serialized form.
    """
    flow = build_flow(factory(), slot, strategy=strategy)
    if through_json:
        flow = roundtrip(flow)
        flow.set_execution_strategy(strategy, 2 if strategy == "concurrent" else None)
        assert name == type(flow.routines["r"]).__name__
    (job,) = run(flow, payload)
    assert "completed" == job.status
    got = received(flow)[event]
    assert got and check(got), got
    flow.shutdown()


def test_every_builtin_is_covered() -> None:
    """
    Each exported routine except HumanInput (tests/stdlib/test_human.py) has a case here.
    """
    assert set(std.ROUTINES) - {"HumanInput"} == {c[0] for c in CASES}
