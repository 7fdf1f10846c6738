"""
Storm: 100 concurrent jobs of a fan-out/fan-in flow on 4 workers while three threads
pause, resume and cancel them at random, with a 1 µs GIL switch interval.

Modes: ``strict`` controllers take a per-job lock, so every pause and cancel is checked
for late starts; ``chaos`` controllers hit the same job from several threads at once.
``blocking`` submitters call ``execute`` (a sequential job then drains on the
submitting thread) instead of ``submit``. ``retries``: one branch fails every first
attempt and retries on the flow's timer, so pause and cancel also meet waiting retries.
"""

from __future__ import annotations

import sys

import pytest
from stress._storm import run_storm


CASES = [
    ("concurrent", False, False, False, 1),
    ("concurrent", True, False, True, 2),
    ("sequential", False, True, True, 3),
    ("sequential", True, True, False, 4),
]


class TestStorm:
    @pytest.mark.parametrize(
        ("strategy", "chaos", "blocking", "flaky", "seed"),
        CASES,
        ids=[
            "concurrent-strict",
            "concurrent-chaos-retries",
            "sequential-blocking-retries",
            "sequential-chaos",
        ],
    )
    def test_invariants_hold_under_storm(
        self, strategy: str, chaos: bool, blocking: bool, flaky: bool, seed: int
    ) -> None:
        """Every job ends final, deliveries match emissions, nothing starts while held."""
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
        )
        assert before == sys.getswitchinterval()
        assert not report.problems, "\n".join(report.problems[:10])
        assert sum(report.statuses.values()) == 100
        assert report.actions["pause"] > 0
        assert report.actions["resume"] > 0
