"""
Contention: 10 threads x 10,000 writes to one live JobState (history, shared data,
shared log, routine states, outputs) while reader threads take snapshots.

Nothing is lost, every change reaches the plugin listener exactly once, and no reader
ever sees a half-made change.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from routilux import Flow, JobState, PluginManager, Routine, hookimpl
from routilux.job_state import JobStateChange

from ._support import Watchdog, switch_interval


WRITERS = 10
WRITES = 10_000
KINDS = ("history", "shared_data", "shared_log", "routine_state", "output")


class _Entry(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", lambda: None)


class _Changes:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kinds: Counter[str] = Counter()

    @hookimpl
    def routilux_job_state_changed(self, change: JobStateChange) -> None:
        with self.lock:
            self.kinds[str(change.kind)] += 1


def _live_job() -> tuple[JobState, _Changes]:
    changes = _Changes()
    pm = PluginManager(load_entry_points=False)
    pm.register(changes)
    flow = Flow(plugins=pm)
    flow.add_routine(_Entry(), "entry")
    js = flow.execute("entry")
    flow.shutdown()
    assert js.status == "completed"
    with changes.lock:
        changes.kinds.clear()
    return js, changes


def _writer(js: JobState, i: int, start: threading.Barrier, errors: list[str]) -> None:
    try:
        start.wait()
        rid = f"w{i}"
        for k in range(WRITES):
            kind = KINDS[k % len(KINDS)]
            if kind == "history":
                js.record_execution(rid, "tick", {"k": k})
            elif kind == "shared_data":
                js.modify_shared_data("counter", lambda v: v + 1, 0)
            elif kind == "shared_log":
                js.append_to_shared_log({"w": i, "k": k})
            elif kind == "routine_state":
                js.merge_routine_state(rid, {"k": k, "twin": k})
            else:
                js.send_output(rid, "o", {"k": k})
    except Exception as exc:
        errors.append(f"writer {i}: {exc!r}")


def _reader(js: JobState, done: threading.Event, errors: list[str]) -> None:
    last_history = 0
    last_log = 0
    try:
        while not done.is_set():
            history = js.get_execution_history()
            if len(history) < last_history:
                errors.append(f"history shrank {last_history} -> {len(history)}")
            last_history = len(history)
            log = js.get_shared_log()
            if len(log) < last_log:
                errors.append(f"shared log shrank {last_log} -> {len(log)}")
            last_log = len(log)
            seen: dict[int, int] = {}
            for entry in log:
                w, k = entry["w"], entry["k"]
                if seen.get(w, -1) >= k:
                    errors.append(f"shared log out of order for writer {w}")
                    break
                seen[w] = k
            for i in range(WRITERS):
                state: Any = js.get_routine_state(f"w{i}")
                if state is not None and state.get("k") != state.get("twin"):
                    errors.append(f"torn routine state {state}")
            counter = js.get_shared_data("counter", 0)
            if not isinstance(counter, int):
                errors.append(f"torn shared data {counter!r}")
    except Exception as exc:
        errors.append(f"reader: {exc!r}")


class TestContention:
    def test_ten_writers_nothing_lost_no_torn_reads(self) -> None:
        """10 x 10,000 mixed writes: exact counts, per-writer order, consistent reads."""
        js, changes = _live_job()
        base_history = len(js.execution_history)
        errors: list[str] = []
        start = threading.Barrier(WRITERS)
        done = threading.Event()
        writers = [
            threading.Thread(target=_writer, args=(js, i, start, errors), name=f"writer-{i}")
            for i in range(WRITERS)
        ]
        readers = [
            threading.Thread(target=_reader, args=(js, done, errors), name=f"reader-{i}")
            for i in range(2)
        ]
        with switch_interval(1e-5), Watchdog(90.0) as dog:
            for t in readers + writers:
                t.start()
            for t in writers:
                t.join(10)
            done.set()
            for t in readers:
                t.join(10)
            dog.check("contention writers/readers")
        assert not any(t.is_alive() for t in writers + readers)
        assert not errors, errors[:10]

        per_kind = WRITES // len(KINDS)
        assert len(js.execution_history) - base_history == WRITERS * per_kind
        assert js.shared_data["counter"] == WRITERS * per_kind
        assert len(js.shared_log) == WRITERS * per_kind
        assert len(js.output_log) == WRITERS * per_kind
        for i in range(WRITERS):
            ks = [e["k"] for e in js.shared_log if e["w"] == i]
            assert ks == sorted(ks)
            assert len(ks) == per_kind
            last = max(k for k in range(WRITES) if KINDS[k % len(KINDS)] == "routine_state")
            assert js.routine_states[f"w{i}"] == {"k": last, "twin": last}
            ticks = [r.data["k"] for r in js.execution_history if r.routine_id == f"w{i}"]
            assert ticks == sorted(ticks)
            assert len(ticks) == per_kind
        with changes.lock:
            kinds = dict(changes.kinds)
        expected = WRITERS * per_kind
        assert kinds == {
            "history": expected,
            "shared_data": expected,
            "shared_log": expected,
            "routine_state": expected,
            "output": expected,
        }
