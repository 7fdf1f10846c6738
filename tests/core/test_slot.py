"""
Slot: handler signature dispatch, merge strategies, standalone delivery.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest
from helpers import Emitter

from routilux import Flow, Routine, Slot


def _kw(**kw: Any) -> Any:
    return ("kw", kw)


def _data(data: Any) -> Any:
    return ("data", data)


def _one(value: Any) -> Any:
    return ("one", value)


def _two(a: Any = None, b: Any = None) -> Any:
    return ("two", a, b)


def _none() -> Any:
    return ("none",)


def _args(*args: Any) -> Any:
    return ("args", args)


@pytest.mark.parametrize(
    ("handler", "payload", "expected"),
    [
        (_kw, {"a": 1}, ("kw", {"a": 1})),
        (_data, {"data": "x"}, ("data", {"data": "x"})),
        (_data, {"a": 1}, ("data", {"a": 1})),
        (_one, {"value": 5, "other": 6}, ("one", 5)),
        (_one, {"other": 6}, ("one", {"other": 6})),
        (_two, {"a": 1, "z": 0}, ("two", 1, None)),
        (_two, {"x": 1}, ("two", {"x": 1}, None)),
        (_none, {"a": 1}, ("none",)),
        (_args, {"a": 1}, ("args", ({"a": 1},))),
    ],
)
def test_dispatch_rules(handler: Any, payload: dict[str, Any], expected: Any) -> None:
    """The handler is called by its signature, as the original documented."""
    from routilux.model._dispatch import make_caller

    assert expected == make_caller(handler)(payload)


def test_handler_reassignment_reclassifies() -> None:
    """Assigning slot.handler analyses the new signature."""
    got: list[Any] = []
    slot = Slot("s")
    slot.handler = lambda value: got.append(value)
    slot.receive({"value": 3})
    assert got == [3]


def test_handler_receiving_the_dict_gets_a_copy() -> None:
    """A handler that mutates the dict it receives cannot corrupt the slot's buffer."""
    slot = Slot("s", None, lambda data: data.clear())
    slot.receive({"a": 1})
    assert slot._data == {"a": 1}


@pytest.mark.parametrize(
    ("strategy", "deliveries", "last_merged", "buffer"),
    [
        ("override", [{"a": 1}, {"b": 2}], {"b": 2}, {"b": 2}),
        ("append", [{"a": 1}, {"a": 2, "b": 3}], {"a": [1, 2], "b": [3]}, {"a": [1, 2], "b": [3]}),
        (
            "append",
            [{"a": "string"}, {"a": "new"}],
            {"a": ["string", "new"]},
            {"a": ["string", "new"]},
        ),
        ("invalid_strategy", [{"a": 1}, {"b": 2}], {"b": 2}, {"b": 2}),
        (
            lambda old, new: {**old, **new, "merged": True},
            [{"a": 1}, {"b": 2}],
            {"a": 1, "b": 2, "merged": True},
            {"a": 1, "b": 2, "merged": True},
        ),
    ],
)
def test_merge_strategies(
    strategy: Any, deliveries: list[dict[str, Any]], last_merged: Any, buffer: Any
) -> None:
    """override replaces, append collects lists, a callable decides; unknown = override."""
    got: list[Any] = []
    slot = Slot("s", None, lambda data: got.append(data), merge_strategy=strategy)
    for d in deliveries:
        slot.receive(d)
    assert last_merged == got[-1]
    assert buffer == slot._data


def test_merge_callable_may_return_a_non_dict() -> None:
    """A handler taking the whole data, or one parameter not in it, gets the non-dict value a
    merge callable returned, in a slot of its own and inside a flow."""
    got: list[Any] = []

    def collect(old: Any, new: dict[str, Any]) -> list[Any]:
        return [*(old or []), new["v"]]

    for handler in (lambda data: got.append(data), lambda items: got.append(items)):
        got.clear()
        slot = Slot("s", None, handler, merge_strategy=collect)
        slot.receive({"v": 1})
        slot.receive({"v": 2})
        assert got == [[1], [1, 2]]

    class Collector(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.take, merge_strategy=collect)

        def take(self, data: Any) -> None:
            got.append(data)

    got.clear()
    flow = Flow()
    flow.add_routine(Emitter(), "e")
    flow.add_routine(Collector(), "c")
    flow.connect("e", "out", "c", "input", param_mapping={"value": "v"})
    js = flow.execute("e", {"items": [1, 2]})
    flow.shutdown()
    assert (js.status, got) == ("completed", [[1], [1, 2]])


def test_standalone_merges_from_threads_lose_nothing() -> None:
    """A slot used on its own by several threads at once merges every delivery (a lock
    guards its buffer, not the GIL)."""
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        counter = Slot("c", None, None, lambda old, new: {"n": old.get("n", 0) + new["n"]})
        append = Slot("a", None, None, "append")
        start = threading.Barrier(4)

        def deliver(t: int) -> None:
            start.wait(10)
            for i in range(2000):
                counter.receive({"n": 1})
                append.receive({f"k{t}": i})

        threads = [threading.Thread(target=deliver, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    finally:
        sys.setswitchinterval(old_interval)
    assert counter._data == {"n": 8000}
    assert {k: len(v) for k, v in append._data.items()} == {f"k{t}": 2000 for t in range(4)}


def test_append_hands_over_copies() -> None:
    """Lists handed to an append handler do not change afterwards."""
    got: list[Any] = []
    slot = Slot("s", None, lambda data: got.append(data), merge_strategy="append")
    slot.receive({"a": 1})
    slot.receive({"a": 2})
    assert got == [{"a": [1]}, {"a": [1, 2]}]


def test_receive_swallows_handler_errors_and_call_handler_can_raise() -> None:
    """receive logs handler errors; call_handler(propagate_exceptions=True) raises them."""

    def bad(**_: Any) -> None:
        raise RuntimeError("nope")

    slot = Slot("s", None, bad)
    slot.receive({})
    with pytest.raises(RuntimeError, match="nope"):
        slot.call_handler({}, propagate_exceptions=True)


def test_merge_errors_propagate() -> None:
    """An error of a merge callable reaches the caller."""

    def merge(old: Any, new: Any) -> Any:
        raise KeyError("merge")

    with pytest.raises(KeyError):
        Slot("s", None, None, merge).receive({})


def test_connect_is_bidirectional_and_idempotent() -> None:
    """connect/disconnect link both ways; repeating is harmless."""
    r = Routine()
    ev = r.define_event("e")
    slot = r.define_slot("s")
    slot.connect(ev)
    slot.connect(ev)
    assert ev.connected_slots == [slot] and slot.connected_events == [ev]
    ev.disconnect(slot)
    ev.disconnect(slot)
    assert ev.connected_slots == [] and slot.connected_events == []


def test_repr() -> None:
    """Slot and Event reprs name the routine id when there is one."""
    r = Routine()
    assert repr(r.define_slot("s")) == f"Slot[{r._id}.s]"
    assert repr(Slot("bare")) == "Slot[bare]"
    assert repr(r.define_event("e")) == f"Event[{r._id}.e]"


def _module_handler(value: Any = None) -> None:
    """A module-level handler: serializable by name."""


class _Owner(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take, merge_strategy="append")
        self.define_event("out", ["value"])

    def take(self, value: Any = None) -> None:
        """A method handler: serialized by its name."""


def test_slot_and_event_round_trip() -> None:
    """Slot and Event serialize as data and restore in place."""
    import json

    from routilux import Event

    owner = _Owner()
    doc = json.loads(json.dumps(owner.get_slot("input").serialize()))
    assert (doc["name"], doc["merge_strategy"], doc["handler"]) == (
        "input",
        "append",
        {"method": "take"},
    )
    fresh = _Owner()
    target = fresh.get_slot("input")
    target.handler = None
    target.deserialize(doc)
    assert target.handler == fresh.take and target.merge_strategy == "append"

    bare = Slot("b", None, _module_handler)
    copy = Slot()
    copy.deserialize(json.loads(json.dumps(bare.serialize())))
    assert (copy.name, copy.handler) == ("b", _module_handler)

    ev = Event()
    ev.deserialize(owner.get_event("out").serialize())
    assert (ev.name, ev.output_params) == ("out", ["value"])


def test_slot_with_lambda_handler_cannot_serialize() -> None:
    """A lambda handler has no name: SerializationError at serialize time."""
    from routilux.exceptions import SerializationError

    with pytest.raises(SerializationError, match="handler"):
        Slot("s", None, lambda **_: None).serialize()
