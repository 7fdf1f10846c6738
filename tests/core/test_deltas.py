"""
Checkpoint deltas (routilux.codec._deltas): applying the delta between two documents of a
job rebuilds the second, whatever changed in between.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routilux import JobState
from routilux.codec._deltas import apply_delta, delta_between, is_delta
from routilux.exceptions import DeserializationError


_changes = st.lists(
    st.one_of(
        st.tuples(st.just("data"), st.sampled_from("abc"), st.integers(0, 9)),
        st.tuples(st.just("log"), st.integers(0, 9)),
        st.tuples(st.just("record"), st.sampled_from(["x", "y"])),
        st.tuples(st.just("state"), st.sampled_from(["x", "y"])),
        st.tuples(st.just("forget"), st.sampled_from("abc")),
        st.tuples(st.just("output"), st.integers(0, 9)),
    ),
    max_size=12,
)


def _apply(js: JobState, change: tuple[Any, ...]) -> None:
    kind = change[0]
    if kind == "data":
        js.update_shared_data(change[1], change[2])
    elif kind == "log":
        js.append_to_shared_log({"n": change[1]})
    elif kind == "record":
        js.record_execution(change[1], "ev", {"k": 1})
    elif kind == "state":
        js.update_routine_state(change[1], {"status": "running"})
    elif kind == "forget":
        js.shared_data.pop(change[1], None)
    else:
        js.send_output("r", "out", {"n": change[1]})


@settings(max_examples=60, deadline=None)
@given(first=_changes, second=_changes, limit=st.sampled_from([None, 3]))
def test_apply_of_the_delta_rebuilds_the_later_document(
    first: list[Any], second: list[Any], limit: int | None
) -> None:
    """Whatever changed between two documents (bounded history too), base + delta ==
    the later document, and the delta is smaller when little changed."""
    js = JobState("f", history_limit=limit)
    for change in first:
        _apply(js, change)
    js.checkpoint_seq = 1
    old = js.serialize()
    for change in second:
        _apply(js, change)
    js.checkpoint_seq = 2
    new = js.serialize()
    delta = delta_between(old, new)
    assert is_delta(delta)
    assert new == apply_delta(old, delta)


def test_a_delta_that_does_not_follow_is_refused() -> None:
    """A delta of another base, or with a gap in a growing part, is a DeserializationError
    naming the field."""
    js = JobState("f")
    js.checkpoint_seq = 1
    old = js.serialize()
    js.append_to_shared_log({"n": 1})
    js.checkpoint_seq = 2
    delta = delta_between(old, js.serialize())
    with pytest.raises(DeserializationError) as info:
        apply_delta({**old, "checkpoint_seq": 5}, delta)
    assert "base_seq" == info.value.path
    gap = {**delta, "append": {"shared_log": {"at": 3, "items": [{"n": 1}]}}}
    with pytest.raises(DeserializationError) as info:
        apply_delta(old, gap)
    assert "append.shared_log" == info.value.path
