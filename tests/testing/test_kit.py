"""
The testing kit (routilux.testing) used as a user would: a test suite of theirs, run by
pytest in a subprocess with the plugin loaded from its entry point.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from routilux.cli import main


pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
APPROVAL = ROOT / "examples" / "approval" / "flow.json"

USER_SUITE = """
from routilux import Flow, Routine
from routilux.testing import assert_emitted, assert_no_errors, assert_outputs, run_flow


class Greet(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", self.greet)
        self.define_event("greeted", ["text"])

    def greet(self, name="world", **_):
        self.send_output("greeting", text=f"hello {name}")
        self.emit("greeted", text=f"hello {name}")


def test_greet(routilux_flow):
    flow = routilux_flow("greet")
    flow.add_routine(Greet(), "g")
    job = run_flow(flow, "g", {"name": "ana"})
    assert_no_errors(job)
    assert_emitted(job, "g.greeted", text="hello ana")
    assert_outputs(job, "g", [{"text": "hello ana"}])


def test_approval_answered_in_the_test(routilux_flow):
    flow = routilux_flow(document=APPROVAL)
    job = run_flow(
        flow,
        "ask",
        {"amount": 5, "employee": "bo", "reason": "pen"},
        answers={"ask": {"answer": "yes"}},
    )
    assert_emitted(job, "decide.approved", data="yes")


def test_wrong_expectation(routilux_flow):
    flow = routilux_flow("greet")
    flow.add_routine(Greet(), "g")
    job = run_flow(flow, "g", {"name": "ana"})
    assert_emitted(job, "g.greeted", text="hello bob")


def test_unanswered_question(routilux_flow):
    flow = routilux_flow(document=APPROVAL)
    run_flow(flow, "ask", {"amount": 5, "employee": "bo", "reason": "pen"})
"""


def test_a_users_suite(pytester: pytest.Pytester) -> None:
    """A user's tests pass with the kit; a failing assert_emitted shows the routine's
    history; an unanswered question fails run_flow naming the question."""
    pytester.makepyfile(test_user=f"APPROVAL = {str(APPROVAL)!r}\n" + USER_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    assert 'never emitted g.greeted with {"text": "hello bob"}' in out
    assert 'g.greeted {"text": "hello ana"}' in out  # the history of 'g'
    assert "the job did not complete: paused" in out
    assert "waiting: ask asks 'Approve 5 EUR for bo (pen)? yes/no'" in out


def test_plugin_is_inert(pytester: pytest.Pytester) -> None:
    """The plugin is loaded through its entry point, activates no fixture and imports no
    part of routilux beyond the package's cheap top (no engine, no store, no structlog)."""
    pytester.makepyfile(
        test_inert="""
        import sys

        def test_plugin_loaded_cheaply(request):
            assert request.config.pluginmanager.has_plugin("routilux")
            heavy = ["routilux.engine._flow", "routilux.persist._sqlite", "structlog", "cattrs"]
            assert [] == [m for m in heavy if m in sys.modules]
            assert "routilux_flow" not in request.fixturenames
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def _stored_approval(tmp: Path, answer: str) -> tuple[Path, str]:
    store = tmp / "jobs.db"
    args = [
        "run",
        str(APPROVAL),
        "--store",
        str(store),
        "--param",
        "amount=120",
        "--param",
        "employee=ana",
        "--param",
        'reason="train ticket"',
        "-q",
    ]
    assert 3 == main(args)
    from routilux.store import SqliteJobStore

    with SqliteJobStore(store) as s:
        [record] = s.list_jobs()
    assert 0 == main(["resume", record.job_id, "--store", str(store), "--set", f"answer={answer}"])
    return store, record.job_id


def test_testcase_replays_the_job(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """routilux testcase writes a test that passes on the job it came from, and fails when
    the flow's output changes."""
    store, job_id = _stored_approval(tmp_path, "yes")
    target = pytester.path / "test_replay.py"
    assert 0 == main(["testcase", job_id, "--store", str(store), "-o", str(target)])
    source = target.read_text()
    assert "answers={'ask': [{'answer': 'yes'}]}" in source
    assert "IGNORE = ('asked_at',)" in source
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # The flow changes: the router now sends 'yes' to "rejected".
    changed = source.replace("in ('yes', 'y')", "in ('no',)")
    assert changed != source
    target.write_text(changed)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "never emitted decide.approved" in result.stdout.str()


def test_testcase_of_a_paused_job_is_refused(tmp_path: Path, capsys: Any) -> None:
    """Only a completed job becomes a test: a paused one exits 2 with one line."""
    store = tmp_path / "jobs.db"
    main(["run", str(APPROVAL), "--store", str(store), "--param", "amount=1", "-q"])
    capsys.readouterr()
    assert 0 == main(["jobs", "--store", str(store), "--json"])
    listed = json.loads(capsys.readouterr().out)
    assert 2 == main(["testcase", listed[0]["job_id"], "--store", str(store)])
    err = capsys.readouterr().err
    assert "only a completed job can become a test" in err


def test_retry_back_off_on_the_fake_clock(pytester: pytest.Pytester) -> None:
    """A user's suite (the fake clock's example of docs/testing.md) retries after a 60 s
    back-off and times a handler out after 30 s, in milliseconds under routilux_clock."""
    example = ROOT / "docs" / "testing" / "test_retries_on_the_fake_clock.py"
    pytester.makepyfile(test_clock=example.read_text(encoding="utf-8"))
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "--durations=0", "--durations-min=0"
    )
    result.assert_outcomes(passed=2)
    durations = re.findall(r"^([\d.]+)s call ", result.stdout.str(), re.MULTILINE)
    assert 2 == len(durations), result.stdout.str()
    assert all(float(d) < 1 for d in durations), durations  # not the minute of the back-off
