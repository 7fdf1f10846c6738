"""
Storm: 100 concurrent jobs of a fan-out/fan-in flow on 4 workers while three threads
pause, resume, cancel and retry them at random, with a 1 µs GIL switch interval.

Modes: ``strict`` controllers take a per-job lock, so every pause and cancel is checked
for late starts; ``chaos`` controllers hit the same job from several threads at once.
``blocking`` submitters call ``execute`` (a sequential job then drains on the
submitting thread) instead of ``submit``. ``retries``: one branch fails every first
attempt and retries on the flow's timer, so pause and cancel also meet waiting retries.
``failing``: the other branch fails one item of each job with a STOP error, so jobs fail,
and the controllers retry them (and meet the lifecycle's refusals: ``JobStateError``).
"""

from __future__ import annotations

import sys

import pytest
from stress._storm import run_storm


CASES = [
    ("concurrent", False, False, False, True, 1),
    ("concurrent", True, False, True, True, 2),
    ("sequential", False, True, True, False, 3),
    ("sequential", True, True, False, True, 4),
]


class TestStorm:
    @pytest.mark.parametrize(
        ("strategy", "chaos", "blocking", "flaky", "failing", "seed"),
        CASES,
        ids=[
            "concurrent-strict-failing",
            "concurrent-chaos-retries-failing",
            "sequential-blocking-retries",
            "sequential-chaos-failing",
        ],
    )
    def test_invariants_hold_under_storm(
        self, strategy: str, chaos: bool, blocking: bool, flaky: bool, failing: bool, seed: int
    ) -> None:
        """Every job ends final, a completed job delivered each item once, a cancelled job
        stays cancelled, nothing starts while held, and the only exception a control call
        raises is the lifecycle's JobStateError where the table refuses the action."""
        before = sys.getswitchinterval()
        report = run_storm(
            jobs=100,
            workers=4,
            controllers=3,
            control_seconds=0.6,
            deadline=90.0,
            seed=seed,
            strategy=strategy,
            chaos=chaos,
            blocking=blocking,
            flaky=flaky,
            failing=failing,
        )
        assert before == sys.getswitchinterval()
        assert not report.problems, "\n".join(report.problems[:10])
        assert sum(report.statuses.values()) == 100
        assert report.actions["pause"] > 0
        assert report.actions["resume"] > 0
        if failing:
            assert report.actions["retry"] > 0
            assert report.statuses["completed"] > 0
