"""
ExecutionHistory: a job's history behaves as a list of ExecutionRecord, bounded or not,
whether its records were booked by the scheduler, appended by hand or loaded.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from routilux import ExecutionRecord, Flow, JobState, PluginManager, Routine, hookimpl
from routilux.history import ExecutionHistory
from routilux.job_state import ChangeKind, JobStateChange


T0 = datetime(2025, 1, 15, 10, 30)


def record(name: str, seconds: int = 0) -> ExecutionRecord:
    return ExecutionRecord("r", name, {"n": name}, T0 + timedelta(seconds=seconds))


class Emitter(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["i"])

    def fire(self, count: int = 3) -> None:
        for i in range(count):
            self.emit("out", i=i)


class TestListBehaviour:
    def test_index_slice_len_iteration(self) -> None:
        """Indexing (negative too), slicing, len, iteration and reversed act as on a list."""
        history = ExecutionHistory([record("a"), record("b", 1), record("c", 2)])
        assert len(history) == 3
        assert history[0].event_name == "a"
        assert history[-1].event_name == "c"
        assert [r.event_name for r in history[1:]] == ["b", "c"]
        assert [r.event_name for r in history] == ["a", "b", "c"]
        assert [r.event_name for r in reversed(history)] == ["c", "b", "a"]
        with pytest.raises(IndexError):
            history[3]

    def test_mutation(self) -> None:
        """append, extend, insert, item and slice assignment, del, pop and clear work."""
        history = ExecutionHistory()
        history.append(record("a"))
        history.extend([record("c", 2), record("d", 3)])
        history.insert(1, record("b", 1))
        assert [r.event_name for r in history] == ["a", "b", "c", "d"]
        history[0] = record("z")
        del history[1]
        assert history.pop().event_name == "d"
        history[0:1] = [record("y"), record("x")]
        assert [r.event_name for r in history] == ["y", "x", "c"]
        history.clear()
        assert len(history) == 0
        assert not history

    def test_sort_and_concatenation(self) -> None:
        """sort(key=, reverse=) sorts in place (stably); + with a list gives a list."""
        history = ExecutionHistory([record("b", 2), record("a", 1), record("c", 1)])
        history.sort(key=lambda r: r.timestamp)
        assert [r.event_name for r in history] == ["a", "c", "b"]
        history.sort(key=lambda r: r.event_name, reverse=True)
        assert [r.event_name for r in history] == ["c", "b", "a"]
        both = history + [record("d")]  # noqa: RUF005 - concatenation is what is tested
        assert isinstance(both, list) and [r.event_name for r in both] == ["c", "b", "a", "d"]
        assert [r.event_name for r in [record("z")] + history] == ["z", "c", "b", "a"]  # noqa: RUF005
        with pytest.raises(TypeError):
            history + 1  # type: ignore[operator]

    def test_only_records_are_accepted(self) -> None:
        """Anything but an ExecutionRecord is refused with a TypeError naming its type."""
        history = ExecutionHistory()
        with pytest.raises(TypeError, match="got dict"):
            history.append({"routine_id": "r"})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="got tuple"):
            history.extend([("r", "x", {}, 0.0)])  # type: ignore[list-item]
        assert len(history) == 0

    def test_equality_with_any_sequence(self) -> None:
        """A history equals a list, tuple or history holding equal records, in order."""
        records = [record("a"), record("b", 1)]
        history = ExecutionHistory(records)
        assert history == list(records)
        assert history == tuple(records)
        assert history == ExecutionHistory(records)
        assert history != records[::-1]
        assert history != "ab"
        assert repr(history) == repr(records)

    def test_bounded_history_keeps_the_newest(self) -> None:
        """With maxlen, appending to a full history drops the oldest record."""
        history = ExecutionHistory(maxlen=2)
        for i, name in enumerate("abc"):
            history.append(record(name, i))
        assert [r.event_name for r in history] == ["b", "c"]
        with pytest.raises(IndexError):
            history.insert(0, record("z"))


class TestBookedRecords:
    def test_booked_records_read_as_records(self) -> None:
        """Events emitted in a job read back as ExecutionRecords with datetime stamps."""
        flow = Flow()
        flow.add_routine(Emitter(), "src")
        js = flow.execute("src", {"count": 3})
        assert [r.event_name for r in js.execution_history] == [
            "start",
            "out",
            "out",
            "out",
            "completed",
        ]
        outs = js.get_execution_history("src")[1:4]
        assert [r.data for r in outs] == [{"i": 0}, {"i": 1}, {"i": 2}]
        stamps = [r.timestamp for r in js.execution_history]
        assert all(isinstance(s, datetime) for s in stamps)
        assert stamps == sorted(stamps)
        assert js.updated_at >= stamps[-1]
        flow.shutdown()

    def test_reading_twice_gives_the_same_object(self) -> None:
        """A booked record becomes one object: a change to it is kept."""
        js = JobState("f")
        js.record_execution("r", "x", {"v": 1})
        first = js.execution_history[0]
        assert js.execution_history[0] is first
        first.event_name = "renamed"
        assert js.execution_history[0].event_name == "renamed"

    def test_record_execution_counts_dropped_records(self) -> None:
        """A job with a history limit keeps the newest records and counts the others."""
        js = JobState("f", history_limit=3)
        for i in range(10):
            js.record_execution("r", f"e{i}", {})
        assert [r.event_name for r in js.execution_history] == ["e7", "e8", "e9"]
        assert js.history_dropped == 7

    def test_assignment_keeps_the_limit(self) -> None:
        """Assigning a list to execution_history gives a history bounded by the job's limit."""
        js = JobState("f", history_limit=2)
        js.execution_history = [record("a"), record("b", 1), record("c", 2)]
        assert isinstance(js.execution_history, ExecutionHistory)
        assert [r.event_name for r in js.execution_history] == ["b", "c"]

    def test_round_trip_of_booked_records(self) -> None:
        """Booked records serialize with ISO stamps and load back equal."""
        js = JobState("f")
        js.record_execution("r", "x", {"v": 1})
        js.record_execution("r", "y", {})
        doc = js.serialize()
        stamps = [item["timestamp"] for item in doc["execution_history"]]
        assert [datetime.fromisoformat(s) for s in stamps] == [
            r.timestamp for r in js.execution_history
        ]
        loaded = JobState()
        loaded.deserialize(doc)
        assert loaded.execution_history == js.execution_history

    def test_mixed_history_serializes_every_stamp(self) -> None:
        """Booked, read, appended and loaded records all serialize with their own time."""
        js = JobState("f")
        js.record_execution("r", "booked", {})
        js.record_execution("r", "read", {})
        read = js.execution_history[1]  # now a record
        js.execution_history.append(record("appended", 5))
        loaded = JobState()
        loaded.deserialize(js.serialize())
        loaded.record_execution("r", "after-load", {"n": 1})
        doc = loaded.serialize()
        names = [item["event_name"] for item in doc["execution_history"]]
        assert names == ["booked", "read", "appended", "after-load"]
        stamps = [datetime.fromisoformat(item["timestamp"]) for item in doc["execution_history"]]
        assert stamps[1] == read.timestamp
        assert stamps[2] == T0 + timedelta(seconds=5)
        assert stamps == [r.timestamp for r in loaded.execution_history]

    def test_reads_while_booking_from_threads(self) -> None:
        """Iterating and indexing while four threads book never fails and loses nothing."""
        js = JobState("f")
        stop = threading.Event()
        errors: list[BaseException] = []

        def book(n: int) -> None:
            for i in range(2000):
                js.record_execution(f"r{n}", "e", {"i": i})

        def read() -> None:
            try:
                while not stop.is_set():
                    for rec in js.execution_history:
                        assert isinstance(rec, ExecutionRecord)
                    if len(js.execution_history):
                        assert isinstance(js.execution_history[-1], ExecutionRecord)
            except BaseException as exc:
                errors.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        writers = [threading.Thread(target=book, args=(n,)) for n in range(4)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        stop.set()
        reader.join()
        assert errors == []
        assert len(js.execution_history) == 8000


class TestDroppedIsExact:
    """Every record a bounded history pushes out is counted, however it got there."""

    def test_bounded_history_counts_its_drops(self) -> None:
        """append, extend, slice assignment and construction count what the bound drops."""
        history = ExecutionHistory([record(f"a{i}", i) for i in range(5)], maxlen=3)
        assert history.dropped == 2
        history.append(record("b"))
        assert history.dropped == 3
        history.extend([record("c"), record("d")])
        assert history.dropped == 5
        history.extend([record(f"e{i}") for i in range(7)])  # longer than the bound
        assert history.dropped == 12
        history[1:2] = [record("x"), record("y")]
        assert history.dropped == 13
        assert len(history) == 3
        assert ExecutionHistory([record("a")] * 5).dropped == 0
        with pytest.raises(IndexError):
            history.insert(0, record("z"))  # a full bounded history refuses: nothing dropped
        assert history.dropped == 13

    def test_public_appends_count_on_the_job(self) -> None:
        """Records appended through execution_history count in history_dropped too."""
        js = JobState("f", history_limit=3)
        js.record_execution("r", "booked", {})
        for i in range(4):
            js.execution_history.append(record(f"a{i}", i))
        assert js.history_dropped == 2
        js.execution_history.extend([record("x"), record("y")])
        js.execution_history += [record("z")]
        assert js.history_dropped == 5
        js.record_execution("r", "booked", {})
        assert js.history_dropped == 6
        assert [r.event_name for r in js.execution_history] == ["y", "z", "booked"]

    def test_assigning_a_longer_list_counts(self) -> None:
        """Assigning more records than the limit counts the ones left out (and keeps the count)."""
        js = JobState("f", history_limit=2)
        for i in range(3):
            js.record_execution("r", f"e{i}", {})
        assert js.history_dropped == 1
        js.execution_history = [record(c, i) for i, c in enumerate("abcde")]
        assert [r.event_name for r in js.execution_history] == ["d", "e"]
        assert js.history_dropped == 4

    def test_loading_a_longer_history_counts(self) -> None:
        """A document whose history is longer than its limit loads the newest records and
        adds the rest to its history_dropped."""
        js = JobState("f")
        for i in range(5):
            js.record_execution("r", f"e{i}", {})
        doc = {**js.serialize(), "history_limit": 2, "history_dropped": 10}
        loaded = JobState()
        loaded.deserialize(doc)
        assert [r.event_name for r in loaded.execution_history] == ["e3", "e4"]
        assert loaded.history_dropped == 13
        assert loaded.serialize()["history_dropped"] == 13

    def test_history_dropped_stays_a_settable_attribute(self) -> None:
        """history_dropped is given to the constructor, assigned and serialized as before."""
        js = JobState("f", history_limit=2, history_dropped=4)
        assert js.history_dropped == 4
        js.record_execution("r", "a", {})
        js.record_execution("r", "b", {})
        js.record_execution("r", "c", {})
        assert js.history_dropped == 5
        js.history_dropped = 0
        assert js.history_dropped == 0
        assert js.execution_history.dropped == 0
        js.record_execution("r", "d", {})
        assert js.serialize()["history_dropped"] == 1
        assert (
            JobState(
                "f", execution_history=[record(c) for c in "abc"], history_limit=1
            ).history_dropped
            == 2
        )


def replay(changes: list[JobStateChange]) -> list[ExecutionRecord]:
    """Rebuild a history from its changes as documented: ``old is None`` appends, else replace."""
    rebuilt: list[ExecutionRecord] = []
    for change in changes:
        assert change.kind is ChangeKind.HISTORY
        if change.old is None:
            rebuilt.append(change.new)
        else:
            rebuilt = list(change.new)
    return rebuilt


class TestPublicChangesReachTheListener:
    """Changes made through the history's list interface reach the job's change listener."""

    def test_every_mutation_is_reported(self) -> None:
        """append/extend report appends; everything else reports the records before and after."""
        js = JobState("f")
        changes: list[JobStateChange] = []
        js._listener = changes.append
        history = js.execution_history
        history.append(record("a"))
        assert len(changes) == 1
        assert (changes[0].old, changes[0].new, changes[0].routine_id) == (None, record("a"), "r")
        history.extend([record("c", 2), record("d", 3)])
        history.insert(1, record("b", 1))
        assert [r.event_name for r in changes[-1].old] == ["a", "c", "d"]
        assert [r.event_name for r in changes[-1].new] == ["a", "b", "c", "d"]
        history[0] = record("z")
        history[1:2] = [record("y"), record("x")]
        del history[0]
        del history[0:1]
        assert history.pop().event_name == "d"
        history.remove(history[0])
        history += [record("p", 9), record("q", 8)]
        history.reverse()
        history.sort(key=lambda r: r.timestamp)
        js.record_execution("r", "booked", {"v": 1})
        assert (None, "booked") == (changes[-1].old, changes[-1].new.event_name)
        js.execution_history = [record("n", 1), *js.execution_history]
        count = len(changes)
        assert count == 16
        assert replay(changes) == list(js.execution_history)
        history = js.execution_history
        history.clear()
        assert replay(changes) == [] and len(changes) == count + 1
        history.clear()  # nothing to clear: nothing changed
        assert len(changes) == count + 1
        assert all(c.job_id == js.job_id for c in changes)

    def test_bounded_history_replays(self) -> None:
        """The appends of a bounded history replay into the same newest records."""
        js = JobState("f", history_limit=2)
        changes: list[JobStateChange] = []
        js._listener = changes.append
        js.execution_history.extend([record("a"), record("b"), record("c")])
        js.execution_history.sort(key=lambda r: r.event_name, reverse=True)
        assert replay(changes) == list(js.execution_history)

    def test_no_listener_no_reports_and_no_cycle(self) -> None:
        """Without a listener the history does not refer to its job; a replaced history
        (assigned or loaded over) stops reporting to the job."""
        js = JobState("f")
        assert js.execution_history._owner is None
        changes: list[JobStateChange] = []
        js._listener = changes.append
        old = js.execution_history
        js.execution_history = [record("a")]
        assert old._owner is None and js.execution_history._owner is js
        old.append(record("stale"))
        assert [c.new for c in changes if c.old is None] == []
        js._listener = None
        assert js.execution_history._owner is None
        js._listener = changes.append
        kept = js.execution_history
        js.deserialize(JobState("g").serialize())
        assert js._listener is None and kept._owner is None

    def test_a_plugin_hears_a_routine_appending(self) -> None:
        """A routine appending to its job's history is reported to routilux_job_state_changed."""
        heard: list[JobStateChange] = []

        class Listener:
            @hookimpl
            def routilux_job_state_changed(self, change: JobStateChange) -> None:
                if change.kind is ChangeKind.HISTORY:
                    heard.append(change)

        class Appender(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.go)

            def go(self, **_: object) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                ctx.job_state.execution_history.append(record("by-hand"))

        pm = PluginManager(load_entry_points=False)
        pm.register(Listener())
        with Flow("f", plugins=pm) as flow:
            flow.add_routine(Appender(), "app")
            js = flow.execute("app")
        assert js.status == "completed"
        assert [c.new.event_name for c in heard] == [r.event_name for r in js.execution_history]
        assert "by-hand" in [c.new.event_name for c in heard]
        js.execution_history.sort(key=lambda r: r.event_name)  # after the job: still heard
        assert replay(heard) == list(js.execution_history)
