"""
Checkpoint deltas (routilux.codec._deltas): applying the delta between two documents of a
job rebuilds the second, whatever changed in between.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routilux import ErrorRecord, ExecutionRecord, JobState
from routilux.codec._deltas import apply_delta, apply_deltas, delta_between, is_delta
from routilux.codec._job_deltas import DeltaBase, job_delta
from routilux.codec._job_states import dump_job_state
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

#: Changes beyond growth: rewrites of the growing parts, errors, metadata, pauses.
_rewrites = st.lists(
    st.one_of(
        st.tuples(st.just("data"), st.sampled_from("abc"), st.integers(0, 9)),
        st.tuples(st.just("record"), st.sampled_from(["x", "y"])),
        st.tuples(st.just("log"), st.integers(0, 9)),
        st.tuples(st.just("pop"), st.just(0)),
        st.tuples(st.just("assign_history"), st.just(0)),
        st.tuples(st.just("replace_log"), st.integers(0, 9)),
        st.tuples(st.just("error"), st.sampled_from(["x", "y"])),
        st.tuples(st.just("meta"), st.sampled_from("ab"), st.integers(0, 9)),
        st.tuples(st.just("drop_state"), st.sampled_from(["x", "y"])),
        st.tuples(st.just("pause"), st.just(0)),
        st.tuples(st.just("edit_first"), st.integers(0, 9)),
    ),
    max_size=8,
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
    elif kind == "output":
        js.send_output("r", "out", {"n": change[1]})
    elif kind == "pop":
        if len(js.execution_history):
            js.execution_history.pop()
    elif kind == "assign_history":
        js.execution_history = list(js.execution_history)[1:]
    elif kind == "replace_log":
        js.shared_log = [{"replaced": change[1]}]
    elif kind == "error":
        js.record_error(
            ErrorRecord(change[1], "s", "ValueError", "bad", 1, datetime.now(), "continue")
        )
    elif kind == "meta":
        js.metadata[change[1]] = change[2]
    elif kind == "drop_state":
        js.routine_states.pop(change[1], None)
    elif kind == "edit_first":
        # An earlier item changes while the last stays: only the container's identity
        # (the history's count of rewrites) tells.
        js.shared_log = [{"edited": change[1]}, *js.shared_log[1:], {"n": change[1]}]
        if len(js.execution_history):
            js.execution_history[0] = ExecutionRecord("edited", "ev", {"n": change[1]})
        js.record_execution("x", "ev", {"k": 1})
    else:
        js.pause_points.append({"reason": "r", "n": len(js.pause_points)})


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


@settings(max_examples=80, deadline=None)
@given(
    rounds=st.lists(st.lists(st.one_of(_changes, _rewrites)), min_size=1, max_size=5),
    limit=st.sampled_from([None, 2]),
)
def test_the_live_delta_of_each_checkpoint_rebuilds_the_job_then(
    rounds: list[list[list[Any]]], limit: int | None
) -> None:
    """A job changed in every way the API allows (growth, rewrites of its lists, a
    bounded history, trimmed errors, dict keys set and removed): after each checkpoint,
    the first document with every live delta applied equals the whole document of the
    job at that checkpoint."""
    js = JobState("f", history_limit=limit)
    with js.lock:
        first = dump_job_state(js)
        base = DeltaBase.of_document(first, js)
    documents, deltas = [first], []
    for batch in rounds:
        for changes in batch:
            for change in changes:
                _apply(js, change)
        js.checkpoint_seq += 1
        with js.lock:
            delta, base = job_delta(base, js, pending=[])
            documents.append(dump_job_state(js))
        deltas.append(delta)
    for k in range(1, len(documents)):
        rebuilt = apply_deltas(copy.deepcopy(documents[0]), copy.deepcopy(deltas[:k]))
        assert rebuilt == documents[k], f"checkpoint {k}"


def test_a_live_delta_holds_only_what_changed() -> None:
    """One more history record and one shared-data key: the delta holds that record, that
    key and the time, nothing of the rest of the job."""
    js = JobState("f")
    for i in range(100):
        js.record_execution("r", "ev", {"i": i})
        js.update_shared_data(f"k{i}", i)
    with js.lock:
        base = DeltaBase.of_document(dump_job_state(js), js)
    js.record_execution("r", "ev", {"i": 100})
    js.update_shared_data("k5", "changed")
    js.checkpoint_seq += 1
    with js.lock:
        delta, _ = job_delta(base, js, pending=[])
    assert [r["data"] for r in delta["append"]["execution_history"]["items"]] == [{"i": 100}]
    assert delta["append"]["execution_history"]["at"] == 100
    assert delta["keys"] == {"shared_data": {"set": {"k5": "changed"}, "delete": []}}
    assert set(delta["set"]) == {"updated_at", "status"}


@settings(max_examples=200, deadline=None)
@given(
    was=st.lists(st.integers(0, 4), max_size=12),
    taken=st.sets(st.integers(0, 11)),
    added=st.lists(st.integers(0, 4), max_size=5),
)
def test_a_work_list_delta_rebuilds_the_list(
    was: list[int], taken: set[int], added: list[int]
) -> None:
    """Work taken from anywhere in a job's pending tasks and work added at the end: the
    delta rebuilds the new list, and holds only the added items when that is all that
    happened."""
    old = {"format": "routilux.job_state", "checkpoint_seq": 1, "pending_tasks": was}
    now = [item for i, item in enumerate(was) if i not in taken] + added
    delta = delta_between(old, {**old, "checkpoint_seq": 2, "pending_tasks": now})
    assert now == apply_delta(old, delta)["pending_tasks"]
    change = delta["queue"].get("pending_tasks")
    assert (change is None) == (now == was)
    if change is not None:
        assert len(change["items"]) <= len(added) or not was


def test_a_work_list_delta_out_of_range_is_refused() -> None:
    """A work-list delta keeping items the list does not have names its part."""
    old = {"format": "routilux.job_state", "checkpoint_seq": 1, "pending_tasks": [1, 2]}
    delta = delta_between(old, {**old, "checkpoint_seq": 2, "pending_tasks": [2, 3]})
    delta["queue"]["pending_tasks"]["keep"] = [[1, 5]]
    with pytest.raises(DeserializationError) as info:
        apply_delta(old, delta)
    assert "queue.pending_tasks" == info.value.path
