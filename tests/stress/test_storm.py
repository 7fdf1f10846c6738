"""
Storm: 100 concurrent jobs of a fan-out/fan-in flow on 4 workers while three threads
pause, resume and cancel them at random, with a 1 µs GIL switch interval.
"""

from __future__ import annotations

import sys

import pytest
from stress._storm import run_storm


class TestStorm:
    @pytest.mark.parametrize("seed", [1, 2], ids=["seed1", "seed2"])
    def test_invariants_hold_under_storm(self, seed: int) -> None:
        """Every job ends final, deliveries match emissions, nothing starts while held."""
        before = sys.getswitchinterval()
        report = run_storm(
            jobs=100, workers=4, controllers=3, control_seconds=1.0, deadline=90.0, seed=seed
        )
        assert before == sys.getswitchinterval()
        assert not report.problems, "\n".join(report.problems[:10])
        assert sum(report.statuses.values()) == 100
        assert report.actions["pause"] > 0
        assert report.actions["resume"] > 0
