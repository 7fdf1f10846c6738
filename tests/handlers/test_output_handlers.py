"""
JsonLinesOutputHandler and StructlogOutputHandler.
"""

from __future__ import annotations

import json
import pickle
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from routilux import Flow, PluginManager, Routine
from routilux_handlers import JsonLinesOutputHandler, StructlogOutputHandler


class Producer(Routine):
    """Entry: emits ``count`` items to Worker."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("item", ["i"])

    def go(self, count: int = 1, **_: Any) -> None:
        for i in range(count):
            self.emit("item", i=i)


class Worker(Routine):
    """Sends one output per item, with a payload long enough to expose interleaving."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)

    def take(self, i: int = 0, **_: Any) -> None:
        self.send_output("row", i=i, text="x" * 2000, when=datetime(2026, 1, 1), tags={"a"})


def read_lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


class TestJsonLinesOutputHandler:
    def test_one_json_object_per_output(self, tmp_path: Path) -> None:
        """Each send_output is one line with job, routine, type, data and timestamp."""
        path = tmp_path / "sub" / "out.jsonl"
        handler = JsonLinesOutputHandler(path)
        with Flow(plugins=PluginManager(False)) as flow:
            flow.add_routine(Producer(), "p")
            flow.add_routine(Worker(), "w")
            flow.connect("p", "item", "w", "input")
            js = flow.execute("p", {"count": 2}, output_handler=handler)
        handler.close()
        lines = read_lines(path)
        assert [line["data"]["i"] for line in lines] == [0, 1]
        first = lines[0]
        assert (js.job_id, "w", "row") == (
            first["job_id"],
            first["routine_id"],
            first["output_type"],
        )
        assert first["data"]["when"] == "2026-01-01T00:00:00"
        assert first["data"]["tags"] == ["a"]
        datetime.fromisoformat(first["timestamp"])

    def test_appends_and_reopens_after_close(self, tmp_path: Path) -> None:
        """The file is appended to; close() then handle() opens it again."""
        path = tmp_path / "out.jsonl"
        path.write_text('{"old": true}\n', encoding="utf-8")
        with JsonLinesOutputHandler(path, fsync=True) as handler:
            handler.handle(job_id="j", routine_id="r", output_type="t", data={"n": 1})
        handler.handle(job_id="j", routine_id="r", output_type="t", data={"n": 2})
        handler.close()
        assert [line if "old" in line else line["data"]["n"] for line in read_lines(path)] == [
            {"old": True},
            1,
            2,
        ]

    def test_many_threads_never_lose_or_interleave(self, tmp_path: Path) -> None:
        """8 threads x 300 large outputs through one handler: every line whole, none lost."""
        path = tmp_path / "out.jsonl"
        handler = JsonLinesOutputHandler(path)
        start = threading.Barrier(8)

        def write(t: int) -> None:
            start.wait()
            for i in range(300):
                handler.handle(
                    job_id=f"j{t}",
                    routine_id="r",
                    output_type="t",
                    data={"i": i, "pad": "y" * 5000},
                )

        threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        handler.close()
        lines = read_lines(path)
        assert len(lines) == 2400
        for t in range(8):
            assert list(range(300)) == [x["data"]["i"] for x in lines if x["job_id"] == f"j{t}"]

    def test_concurrent_jobs_share_one_handler(self, tmp_path: Path) -> None:
        """Several jobs of a 4-worker flow, submitted at once, write every output exactly once."""
        path = tmp_path / "out.jsonl"
        handler = JsonLinesOutputHandler(path)
        with Flow(
            execution_strategy="concurrent", max_workers=4, plugins=PluginManager(False)
        ) as flow:
            flow.add_routine(Producer(), "p")
            flow.add_routine(Worker(), "w")
            flow.connect("p", "item", "w", "input")
            jobs = [flow.submit("p", {"count": 50}, output_handler=handler) for _ in range(6)]
            assert flow.wait_for_completion(10)
        handler.close()
        lines = read_lines(path)
        assert len(lines) == 300
        for js in jobs:
            assert js.status == "completed"
            assert list(range(50)) == sorted(
                x["data"]["i"] for x in lines if x["job_id"] == js.job_id
            )

    def test_two_handlers_on_one_file(self, tmp_path: Path) -> None:
        """Two handler objects appending to one file from two threads keep every line whole."""
        path = tmp_path / "out.jsonl"
        handlers = [JsonLinesOutputHandler(path), JsonLinesOutputHandler(path)]

        def write(h: JsonLinesOutputHandler, name: str) -> None:
            for i in range(500):
                h.handle(
                    job_id=name, routine_id="r", output_type="t", data={"i": i, "p": "z" * 3000}
                )

        threads = [
            threading.Thread(target=write, args=(h, f"h{n}")) for n, h in enumerate(handlers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for h in handlers:
            h.close()
        assert len(read_lines(path)) == 1000

    def test_pickles(self, tmp_path: Path) -> None:
        """A handler pickles (without its file descriptor) and works after loading."""
        path = tmp_path / "out.jsonl"
        handler = JsonLinesOutputHandler(path, fsync=True)
        handler.handle(job_id="j", routine_id="r", output_type="t", data={})
        copy = pickle.loads(pickle.dumps(handler))
        assert (path, True) == (copy.path, copy.fsync)
        copy.handle(job_id="j", routine_id="r", output_type="t", data={})
        handler.close()
        copy.close()
        assert len(read_lines(path)) == 2


class TestStructlogOutputHandler:
    def test_outputs_become_events(self, structlog_reset: None) -> None:
        """Each output is one structlog event with the job, routine, type and plain data."""
        with capture_logs() as logs, Flow(plugins=PluginManager(False)) as flow:
            flow.add_routine(Producer(), "p")
            flow.add_routine(Worker(), "w")
            flow.connect("p", "item", "w", "input")
            js = flow.execute("p", {"count": 2}, output_handler=StructlogOutputHandler())
        outputs = [e for e in logs if e["event"] == "routilux_output"]
        assert [e["data"]["i"] for e in outputs] == [0, 1]
        assert {
            "job_id": js.job_id,
            "routine_id": "w",
            "output_type": "row",
            "log_level": "info",
        }.items() <= outputs[0].items()
        assert outputs[0]["data"]["tags"] == ["a"]

    @pytest.mark.parametrize(("level", "event"), [("warning", "out"), ("debug", "x")])
    def test_level_and_event(self, structlog_reset: None, level: str, event: str) -> None:
        """The event name and the log level are configurable."""
        handler = StructlogOutputHandler(event=event, level=level)
        with capture_logs() as logs:
            handler.handle(job_id="j", routine_id="r", output_type="t", data={"k": 1})
        assert [(event, level, {"k": 1})] == [(e["event"], e["log_level"], e["data"]) for e in logs]
