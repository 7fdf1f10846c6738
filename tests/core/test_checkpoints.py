"""
Checkpoints of a job's run, as a checkpoint function or a store sees them: what a snapshot
holds, what follows a refused or unwritable one, and that a job whose checkpoint fails
ends (failed) instead of leaving its waiters waiting. Every wait is bounded, so a
checkpoint that never comes fails a test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest
from helpers import Emitter, chain, run_job_within, wait_until

from routilux import ErrorHandler, Flow, Routine
from routilux.exceptions import SerializationError
from routilux.registry import get_routine_class, register_routine
from routilux.serialization import is_delta
from routilux.store import SqliteJobStore, create_job


WAIT = 10.0


def _strict(document: dict[str, Any]) -> None:
    # What a store does with a document: strict JSON, or SerializationError.
    try:
        json.dumps(document, allow_nan=False)
    except ValueError as exc:
        raise SerializationError(str(exc), path="state") from exc


class _Flaky(Routine):
    """Fails its first call (a retry follows after ``retry_delay``), then records its input."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            msg = "first call fails"
            raise ConnectionError(msg)
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("got", value)


def test_a_checkpoint_taken_while_a_retry_waits_holds_the_retry() -> None:
    """A checkpoint taken while a failed activation waits for its retry lists that retry
    in its pending tasks, so a job resumed from it runs the retry again."""
    flow = Flow(execution_strategy="concurrent")
    flow.add_routine(Emitter(), "e")
    flaky = _Flaky()
    flaky.set_error_handler(ErrorHandler("retry", max_retries=1, retry_delay=0.3))
    flow.add_routine(flaky, "flaky")
    flow.connect("e", "out", "flaky", "input")
    documents: list[dict[str, Any]] = []

    def checkpoint(js: Any, document: dict[str, Any]) -> bool:
        documents.append(document)
        return True

    try:
        js = flow.submit("e", {"value": 7}, checkpoint=checkpoint, checkpoint_every=1)
        assert js.wait_for_completion(WAIT), f"job still {js.status}"
        assert ("completed", {"got": 7}) == (js.status, js.shared_data)
        # The first checkpoint after the failure: the retry waits on its timer, or (on a
        # slow machine) it is queued already; either way it is a pending task.
        after = next(d for d in documents if d["errors"])
        assert [("flaky", 1, {"value": 7})] == [
            (t["slot_routine_id"], t["retry_count"], t["data"]) for t in after["pending_tasks"]
        ]
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_refused_final_delta_is_followed_at_once_by_a_whole_snapshot(strategy: str) -> None:
    """The last checkpoint of a job (completed) refused as a delta is handed over again at
    once, whole, before the job counts as settled: the function ends with the final state."""
    flow = Flow(execution_strategy=strategy)
    flow.add_routine(Emitter(), "e")
    seen: list[tuple[str, bool]] = []

    def checkpoint(js: Any, document: dict[str, Any]) -> bool:
        delta = is_delta(document)
        status = document["set"].get("status") if delta else document["status"]
        seen.append((status, delta))
        return not (status == "completed" and delta)

    try:
        js = flow.submit(
            "e", {"value": 1}, checkpoint=checkpoint, checkpoint_deltas=True, checkpoint_every=1
        )
        assert js.wait_settled(WAIT), f"job not settled: {js.status}, checkpoints {seen}"
        assert [("running", False), ("completed", True), ("completed", False)] == seen
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


class _Put(Routine):
    """Puts ``value`` (config) into shared data ``tags``; pauses its job when ``pause``."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(value=None, pause=False)
        self.define_slot("trigger", handler=self.go)

    def go(self, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        value = self.get_config("value")
        ctx.job_state.update_shared_data("tags", math.nan if value == "nan" else value)
        if self.get_config("pause"):
            ctx.flow.pause(ctx.job_state, reason="asked")


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_job_resumed_with_a_new_checkpoint_function_hands_it_a_whole_snapshot_first(
    strategy: str,
) -> None:
    """With checkpoint_deltas, the first snapshot a resume's new checkpoint function gets is
    whole: it never saw the snapshot a delta would follow."""
    flow = Flow(execution_strategy=strategy)
    put = _Put()
    put.set_config(value=1, pause=True)
    flow.add_routine(put, "put")
    seen: dict[str, list[tuple[str | None, bool]]] = {"first": [], "second": []}

    def keeper(name: str) -> Any:
        def checkpoint(js: Any, document: dict[str, Any]) -> bool:
            seen[name].append(_status(document))
            return True

        return checkpoint

    try:
        js = flow.submit("put", checkpoint=keeper("first"), checkpoint_deltas=True)
        assert js.wait_settled(WAIT), f"job not settled: {js.status}, checkpoints {seen}"
        assert ("paused", False) == seen["first"][-1]
        flow.resume(js, checkpoint=keeper("second"), checkpoint_deltas=True)
        assert js.wait_settled(WAIT), f"job not settled: {js.status}, checkpoints {seen}"
        assert "completed" == js.status
        assert [("completed", False)] == seen["second"]
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


def test_data_a_snapshot_cannot_write_fails_the_job_once() -> None:
    """A job whose data cannot be written (a set) fails with one error naming the path;
    every checkpoint handed over from then on is written leniently (strict JSON)."""
    flow = Flow()
    put = _Put()
    put.set_config(value={1, 2})
    flow.add_routine(put, "put")
    documents: list[dict[str, Any]] = []

    def checkpoint(js: Any, document: dict[str, Any]) -> bool:
        _strict(document)
        documents.append(document)
        return True

    try:
        js = flow.submit("put", checkpoint=checkpoint, checkpoint_every=1)
        assert js.wait_for_completion(WAIT), f"job still {js.status}"
        assert js.wait_settled(WAIT), "job not settled"
        assert "failed" == js.status
        assert [("SerializationError", "")] == [(e.error_type, e.routine_id) for e in js.errors]
        assert "shared_data.tags" in js.errors[0].message
        assert documents, "no checkpoint was handed over"
        assert "failed" == documents[-1]["status"]
        assert documents[-1]["shared_data"]["tags"].startswith("<not JSON: ")
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


def _registered(cls: type[Routine], name: str) -> None:
    try:
        get_routine_class(name)
    except LookupError:
        register_routine(cls, name=name)


_registered(_Put, "tests.checkpoints.Put")


@pytest.mark.parametrize("pause", [False, True])
def test_a_store_that_refuses_the_data_fails_the_job(tmp_path: Path, pause: bool) -> None:
    """NaN passes the snapshot but not the store: the job fails (also one that paused
    itself, which no runner takes up again), run_job returns it, and the store holds the
    failure in a lenient checkpoint naming the value."""
    flow = Flow("nan")
    put = _Put()
    put.set_config(value="nan", pause=pause)
    flow.add_routine(put, "put")
    with SqliteJobStore(tmp_path / "s.db") as store:
        job_id = create_job(store, flow, "put")
        js = run_job_within(job_id, store)
        assert "failed" == js.status
        assert ["SerializationError"] == [e.error_type for e in js.errors]
        record = store.load_job(job_id)
        assert "failed" == record.status
        assert record.state is not None
        assert record.state["shared_data"]["tags"].startswith("<not JSON: ")
        assert math.isnan(js.shared_data["tags"])  # the job's own data is untouched


def test_a_failed_checkpoint_records_one_engine_error() -> None:
    """The error a failed checkpoint records is the engine's: no routine, no slot, first
    attempt, strategy stop, its message naming the checkpoint."""
    flow = Flow()
    flow.add_routine(Emitter(), "e")

    def checkpoint(js: Any, document: dict[str, Any]) -> bool:
        msg = "disk full"
        raise OSError(msg)

    try:
        js = flow.submit("e", {"value": 1}, checkpoint=checkpoint, checkpoint_every=1)
        assert js.wait_settled(WAIT), f"job not settled: {js.status}"
        [error] = js.errors
        assert ("", "", "OSError", "checkpoint failed: disk full", 1, "stop") == (
            error.routine_id,
            error.slot,
            error.error_type,
            error.message,
            error.attempt,
            error.strategy,
        )
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


class _Keep(Routine):
    """Entry: keeps a weak reference to its job's run, emits once."""

    runs: list[weakref.ref[Any]] = []

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["value"])

    def go(self, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        _Keep.runs.append(weakref.ref(ctx.job_state._run))
        self.emit("out", value=1)


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_checkpointed_job_lets_its_run_go_once_written(strategy: str) -> None:
    """A finished job whose last checkpoint is written no longer holds its run (queues,
    caches), as one without checkpoints does."""
    _Keep.runs = []
    flow = Flow(execution_strategy=strategy)
    flow.add_routine(_Keep(), "k")
    flow.add_routine(Emitter(), "sink")
    flow.connect("k", "out", "sink", "trigger")
    try:
        kept = [flow.submit("k", checkpoint=lambda *_: True) for _ in range(3)]
        for js in kept:
            assert js.wait_settled(WAIT), f"job not settled: {js.status}"
        assert ["completed"] * 3 == [js.status for js in kept]
        flow.execute("k", timeout=WAIT)  # the flow's last run is now another one
        gc.collect()
        assert [] == [ref for ref in _Keep.runs[:3] if ref() is not None]
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


class _Async(Routine):
    """A coroutine handler that records its input."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    async def take(self, value: Any = None, **_: Any) -> None:
        await asyncio.sleep(0)
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.append_to_shared_log({"value": value})


def test_checkpoint_every_without_a_checkpoint_function_is_ignored() -> None:
    """checkpoint_every without a checkpoint function takes no checkpoint and changes
    nothing: a job of coroutine handlers completes."""
    flow = Flow(execution_strategy="concurrent")
    flow.add_routine(Emitter(), "e")
    flow.add_routine(_Async(), "a")
    flow.connect("e", "out", "a", "input")
    try:
        js = flow.submit("e", {"items": [1, 2, 3]}, checkpoint_every=1)
        assert js.wait_for_completion(WAIT), f"job still {js.status}"
        assert "completed" == js.status
        assert [1, 2, 3] == sorted(e["value"] for e in js.shared_log)
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_job_whose_checkpoint_failed_keeps_its_work_for_a_retry(strategy: str) -> None:
    """A checkpoint function that raises fails the job with what it had still to do kept
    in its failed tasks: a retry on this process runs that work, each item once, and its
    waiters wait for it."""
    flow = Flow(execution_strategy=strategy)
    chain(flow, 2)
    calls: list[str] = []

    def checkpoint(js: Any, document: dict[str, Any]) -> bool:
        calls.append(document["status"])
        if len(calls) == 1:
            msg = "disk full"
            raise OSError(msg)
        return True

    try:
        js = flow.submit("e", {"items": [1, 2]}, checkpoint=checkpoint, checkpoint_every=1)
        assert js.wait_settled(WAIT), f"job not settled: {js.status}"
        assert "failed" == js.status
        assert ["r0", "r0"] == [t["slot_routine_id"] for t in js.failed_tasks]
        flow.retry(js, checkpoint=checkpoint)
        assert js.wait_settled(WAIT), f"retried job not settled: {js.status}"
        assert "completed" == js.status
        assert [("r0", 1), ("r0", 2), ("r1", 1), ("r1", 2)] == sorted(
            (e["routine"], e["value"]) for e in js.shared_log
        )
        assert "completed" == calls[-1]
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


def _status(document: dict[str, Any]) -> tuple[str | None, bool]:
    # A document's status (a delta sets it only when it changed), and whether it is a delta.
    if is_delta(document):
        return document["set"].get("status"), True
    return document["status"], False


def test_a_checkpoint_taken_while_another_is_handed_over_is_whole() -> None:
    """With checkpoint_deltas, a snapshot taken while the function still holds the one
    before (here: the job cancelled meanwhile) is whole: a delta could only follow a
    checkpoint the function has not accepted yet. (Sequential: nothing else of the job runs
    while its runner hands a checkpoint over.)"""
    flow = Flow(execution_strategy="sequential")
    chain(flow, 2)
    seen: list[tuple[str | None, bool]] = []
    holding = threading.Event()
    release = threading.Event()

    def checkpoint(js: Any, document: dict[str, Any]) -> bool:
        seen.append(_status(document))
        if len(seen) == 2:  # the first delta: held until the job is cancelled
            holding.set()
            assert release.wait(WAIT), "the test never released the checkpoint"
        return True

    try:
        js = flow.submit(
            "e",
            {"items": [1, 2]},
            checkpoint=checkpoint,
            checkpoint_deltas=True,
            checkpoint_every=1,
        )
        assert holding.wait(WAIT), f"the first delta never came: {seen}"
        flow.cancel(js, reason="stop")
        release.set()
        assert js.wait_settled(WAIT), f"job not settled: {js.status}"
        assert [False, True] == [delta for _, delta in seen[:2]], seen  # whole, then a delta
        assert ("cancelled", False) == seen[2], seen
    finally:
        release.set()
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


class _HeldRetry(Routine):
    """Fails its first call; its retry signals ``entered`` and waits for ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            msg = "first call fails"
            raise ConnectionError(msg)
        self.entered.set()
        assert self.release.wait(WAIT), "the test never released the retry"


def test_a_job_abandoned_by_its_checkpoint_function_is_settled_at_once() -> None:
    """When the checkpoint function fails (a stale runner, a store gone), the job is
    settled for its waiters at once, though a handler of it still runs: nothing of it runs
    here for anyone to wait for (run_job returns, raising the error)."""
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Emitter(), "e")
    held = _HeldRetry()
    held.set_error_handler(ErrorHandler("retry", max_retries=1, retry_delay=0.05))
    flow.add_routine(held, "held")
    flow.connect("e", "out", "held", "input")
    calls: list[int] = []

    def checkpoint(js: Any, document: dict[str, Any]) -> bool:
        calls.append(document["checkpoint_seq"])
        if len(calls) == 2:  # taken after the failure: fails once the retry runs
            assert held.entered.wait(WAIT), "the retry never ran"
            msg = "store gone"
            raise OSError(msg)
        return True

    try:
        js = flow.submit("e", {"value": 1}, checkpoint=checkpoint, checkpoint_every=1)
        assert held.entered.wait(WAIT), "the retry never ran"
        wait_until(lambda: js.status == "failed", WAIT, "the job to fail")
        assert not held.release.is_set()
        assert js.wait_settled(WAIT), "a waiter waits for a handler of an abandoned job"
        assert "checkpoint failed: store gone" == js.errors[-1].message
    finally:
        held.release.set()
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job
