"""
The runs of one process share the Flow rebuilt for a stored flow version (run_job), and
never a stale one: a removed registered name, a damaged stored flow, a run that went wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from routilux import Flow, JobState, Routine
from routilux.persist._rebuild import FlowCache
from routilux.registry import register_routine, unregister_routine
from routilux.store import SqliteJobStore, create_job, run_job


NAME = "test_shared_flows.Mark"


class _MarkA(Routine):
    by = "A"

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)

    def go(self, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("by", self.by)


class _MarkB(_MarkA):
    by = "B"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    register_routine(_MarkA, name=NAME)
    s = SqliteJobStore(tmp_path / "jobs.db")
    yield s
    s.close()
    unregister_routine(NAME)


def _flow(flow_id: str) -> Flow:
    flow = Flow(flow_id)
    flow.add_routine(_MarkA(), "mark")
    return flow


def _run(store: SqliteJobStore, job_id: str) -> tuple[JobState, Flow]:
    seen: list[Flow] = []
    done = run_job(job_id, store, prepare=lambda f, _js: seen.append(f))
    assert "completed" == done.status, done.errors
    return done, seen[0]


def test_runs_of_one_flow_version_share_its_flow(store: SqliteJobStore) -> None:
    """Two jobs of one stored flow version run on the same rebuilt Flow."""
    flow = _flow("shared-1")
    first = _run(store, create_job(store, flow, "mark"))[1]
    second = _run(store, create_job(store, flow, "mark"))[1]
    assert first is second
    assert first is not flow, "run_job runs the stored flow, not the caller's object"


def test_a_removed_name_makes_the_next_run_rebuild(store: SqliteJobStore) -> None:
    """A routine type registered anew under a removed name is what the next run uses."""
    flow = _flow("shared-2")
    first, second = create_job(store, flow, "mark"), create_job(store, flow, "mark")
    done, before = _run(store, first)
    assert "A" == done.shared_data["by"]
    unregister_routine(NAME)
    register_routine(_MarkB, name=NAME)
    done, after = _run(store, second)
    assert "B" == done.shared_data["by"]
    assert after is not before


def test_a_flow_pushed_out_is_shut_down_when_its_last_run_ends() -> None:
    """The least recently used flow leaves the cache; a run still using it keeps it working."""
    cache = FlowCache(size=1)
    with cache.lease(("a", "1"), lambda: _flow("a")) as a:
        with cache.lease(("b", "1"), lambda: _flow("b")) as b:
            assert a is not b
            assert "completed" == a.execute("mark", timeout=10).status
        assert "completed" == a.execute("mark", timeout=10).status
        in_use = a._executor
    assert in_use is not None
    assert a._executor is None, "the pushed-out flow's workers were not released"
    with cache.lease(("b", "1"), lambda: _flow("other")) as again:
        assert again is b


def test_a_run_that_raised_gives_its_flow_up() -> None:
    """A run that raised may leave work on its flow's workers: the next run builds anew."""
    cache = FlowCache()
    seen: list[Flow] = []

    def run() -> None:
        with cache.lease(("a", "1"), lambda: _flow("a")) as flow:
            seen.append(flow)
            assert "completed" == flow.execute("mark", timeout=10).status
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run()
    first = seen[0]
    assert first._executor is None, "the flow of a run that raised was not released"
    with cache.lease(("a", "1"), lambda: _flow("a")) as second:
        assert second is not first
