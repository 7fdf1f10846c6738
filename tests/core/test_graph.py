"""
Pictures of flows (``routilux.graph``): DOT and Mermaid text, images drawn by Graphviz's dot,
each routine's state in a job, and the ``routilux graph`` command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import Emitter, Relay

from routilux import Flow, JobState
from routilux.cli import EXIT_BAD_INPUT, EXIT_COMPLETED, main
from routilux.exceptions import ConfigurationError, GraphvizError, GraphvizNotFoundError
from routilux.graph import (
    STATE_STYLES,
    render_dot,
    render_image,
    render_mermaid,
    routine_states,
)


ROUTINES = Path(__file__).with_name("graph_routines.py")


@pytest.fixture
def chain(make_flow: Any) -> Flow:
    flow: Flow = make_flow("chain")
    flow.add_routine(Emitter(), "start")
    flow.add_routine(Relay(), "relay")
    flow.connect("start", "out", "relay", "input")
    return flow


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    path = tmp_path / "chain.json"
    path.write_text(
        json.dumps(
            {
                "format": "routilux.flow",
                "version": 1,
                "flow_id": "chain",
                "routines": {"start": {"type": "graph.Start"}, "relay": {"type": "graph.Relay"}},
                "connections": [
                    {
                        "source_routine_id": "start",
                        "source_event": "out",
                        "target_routine_id": "relay",
                        "target_slot": "input",
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    return path


class TestText:
    def test_dot_of_a_flow_and_of_its_document_agree(self, chain: Flow) -> None:
        """A flow and its serialized document draw the same picture (type names of
        unregistered classes are their class names)."""
        text = render_dot(chain)
        assert '"start" -> "relay" [label="out → input"];' in text
        assert '"relay" [label="relay\\nRelay"' in text
        assert text == render_dot(chain.serialize())

    def test_states_colour_the_boxes(self, chain: Flow) -> None:
        """With states each box has its state's colours, class and third label line; a
        routine left out is idle."""
        text = render_dot(chain, {"start": "completed"})
        start = next(line for line in text.splitlines() if line.strip().startswith('"start" ['))
        done = STATE_STYLES["completed"]
        assert f'color="{done.stroke}", fillcolor="{done.fill}"' in start
        assert 'class="routine st-completed"' in start
        assert "\\ncompleted" in start
        assert 'class="routine st-idle"' in text

    def test_unknown_state_is_refused(self, chain: Flow) -> None:
        """A state that has no style is a ConfigurationError naming it."""
        with pytest.raises(ConfigurationError, match="'asleep'"):
            render_dot(chain, {"start": "asleep"})

    def test_labels_are_quoted(self) -> None:
        """Quotes, backslashes and line breaks in ids cannot break the DOT or Mermaid text."""
        document = {
            "flow_id": 'a"b',
            "routines": {'x"\\\ny': {"type": "T<b>"}},
            "connections": [],
        }
        dot_text = render_dot(document)
        assert 'digraph "a\\"b" {' in dot_text
        assert '"x\\"\\\\ y"' in dot_text
        mermaid = render_mermaid(document)
        assert 'r0["x#quot;\\ y<br/><small>T#lt;b#gt;</small>"]' in mermaid

    def test_mermaid_classes_follow_states(self, chain: Flow) -> None:
        """Mermaid boxes get their state's class, defined with the same colours."""
        text = render_mermaid(chain, {"relay": "failed"})
        assert text.startswith("flowchart LR\n")
        assert '    r0 -- "out → input" --> r1' in text
        assert ":::failed" in text.splitlines()[2]
        failed = STATE_STYLES["failed"]
        assert f"classDef failed fill:{failed.fill},stroke:{failed.stroke}" in text


class TestStates:
    def test_from_a_job_state_and_its_document(self, chain: Flow) -> None:
        """A finished job's routines are completed; a waiting routine is waiting whatever
        its stored status; a document gives the same answer as the JobState."""
        job = chain.execute("start", {"items": [1]})
        assert {"start": "completed", "relay": "completed"} == routine_states(chain, job)
        assert {"start": "completed", "relay": "waiting"} == routine_states(
            chain, job.serialize(), waiting={"relay"}
        )

    def test_not_run_and_damaged_entries_are_idle(self, chain: Flow) -> None:
        """A routine without a state, or with one that is not a mapping, is idle."""
        assert {"start": "idle", "relay": "idle"} == routine_states(chain, JobState())
        assert {"start": "idle", "relay": "idle"} == routine_states(
            chain, {"routine_states": {"start": "junk"}}
        )


class TestImages:
    def test_svg(self, chain: Flow, graphviz_dot: str) -> None:
        """dot draws an SVG with one node per routine, filled with its state's colour."""
        svg = render_image(chain, "svg", states={"start": "running"}).decode("utf-8")
        assert svg.lstrip().startswith("<?xml")
        assert 2 == svg.count('class="node')
        assert STATE_STYLES["running"].fill in svg

    def test_png(self, chain: Flow, graphviz_dot: str) -> None:
        """PNG bytes start with the PNG signature."""
        assert render_image(chain, "png").startswith(b"\x89PNG\r\n\x1a\n")

    def test_without_dot(self, chain: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without dot on PATH the error names the graphviz package, and is also a
        FileNotFoundError."""
        monkeypatch.setenv("PATH", "")
        with pytest.raises(GraphvizNotFoundError, match="graphviz system package") as info:
            render_image(chain, "svg")
        assert isinstance(info.value, FileNotFoundError)
        assert "dot" == info.value.program

    def test_dot_failure_is_reported(
        self, chain: Flow, graphviz_dot: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A dot that fails gives a GraphvizError with its exit code and standard error."""
        fake = tmp_path / "dot"
        fake.write_text("#!/bin/sh\necho 'Error: no layout' >&2\nexit 3\n", encoding="utf-8")
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", str(tmp_path))
        with pytest.raises(GraphvizError, match="no layout") as info:
            render_image(chain, "png")
        assert (3, "Error: no layout") == (info.value.returncode, info.value.stderr)

    def test_unknown_format(self, chain: Flow) -> None:
        """Only svg and png are image formats."""
        with pytest.raises(ConfigurationError, match="'gif'"):
            render_image(chain, "gif")


def _graph(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "routilux.cli", "graph", "--import", str(ROUTINES), *args],
        capture_output=True,
        timeout=10,
        check=False,
        env=env,
    )


class TestCommand:
    def test_svg_to_stdout(self, flow_file: Path, graphviz_dot: str) -> None:
        """`routilux graph --format svg` prints the SVG dot draws."""
        proc = _graph(str(flow_file), "--format", "svg")
        assert EXIT_COMPLETED == proc.returncode, proc.stderr
        assert b"<svg" in proc.stdout and b"<title>relay</title>" in proc.stdout

    def test_png_to_a_file(self, flow_file: Path, graphviz_dot: str, tmp_path: Path) -> None:
        """-o writes the picture to a file and says so."""
        out = tmp_path / "chain.png"
        proc = _graph(str(flow_file), "--format", "png", "-o", str(out))
        assert EXIT_COMPLETED == proc.returncode, proc.stderr
        assert f"wrote {out}\n".encode() == proc.stdout
        assert out.read_bytes().startswith(b"\x89PNG")

    def test_missing_dot_is_one_line(self, flow_file: Path) -> None:
        """Without dot on PATH: exit 2 and one line that names the graphviz package."""
        # The interpreter is named by its full path: only dot's search is left without PATH.
        proc = _graph(
            str(flow_file), "--format", "svg", env={"PATH": "", "PYTHONPATH": ":".join(sys.path)}
        )
        stderr = proc.stderr.decode("utf-8")
        assert EXIT_BAD_INPUT == proc.returncode
        assert stderr.startswith("routilux: error: drawing a flow as SVG needs")
        assert "install the graphviz system package" in stderr
        assert 1 == len(stderr.splitlines())

    def test_flow_file_or_job(self, flow_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """graph needs exactly one of a flow file and --job."""
        assert EXIT_BAD_INPUT == main(["graph"])
        assert EXIT_BAD_INPUT == main(["graph", str(flow_file), "--job", "x"])
        assert "name one of them" in capsys.readouterr().err

    def test_job_is_coloured_by_state(
        self, flow_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--job draws the stored job's flow with its routines' states."""
        store = str(tmp_path / "jobs.db")
        args = ["--import", str(ROUTINES), "--store", store]
        assert EXIT_COMPLETED == main(["run", str(flow_file), "--job-id", "j1", "-q", *args])
        capsys.readouterr()
        assert EXIT_COMPLETED == main(["graph", "--job", "j1", "--format", "dot", *args])
        text = capsys.readouterr().out
        assert 2 == text.count('class="routine st-completed"')
        assert EXIT_BAD_INPUT == main(["graph", "--job", "nope", *args])
        assert "nope" in capsys.readouterr().err
