"""
Connection: parameter mapping and linking.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux import Connection, Event, Slot


@pytest.mark.parametrize(
    ("mapping", "data", "expected"),
    [
        ({}, {"a": 1}, {"a": 1}),
        ({"a": "x"}, {"a": 1, "c": 3}, {"x": 1, "a": 1, "c": 3}),
        ({"a": "x"}, {"a": 1, "x": 5}, {"x": 1, "a": 1}),
        ({"a": "b", "b": "a"}, {"a": 1, "b": 2}, {"b": 1, "a": 2}),
        ({"missing": "x"}, {"a": 1}, {"a": 1}),
    ],
)
def test_apply_mapping(mapping: dict[str, str], data: dict[str, Any], expected: Any) -> None:
    """Mapped keys are renamed (and passed through); unmapped keys named like a target drop."""
    assert expected == Connection(param_mapping=mapping)._apply_mapping(data)


def test_empty_mapping_returns_same_object() -> None:
    """No mapping: the data object itself."""
    data = {"a": 1}
    assert Connection()._apply_mapping(data) is data


def test_constructor_links_and_disconnect_is_repeatable() -> None:
    """Both ends given: linked at once; disconnect twice is safe."""
    ev, slot = Event("e"), Slot("s")
    conn = Connection(ev, slot)
    assert ev.connected_slots == [slot]
    conn.disconnect()
    conn.disconnect()
    assert ev.connected_slots == []
    assert repr(conn) == "Connection[Event[e] -> Slot[s]]"
