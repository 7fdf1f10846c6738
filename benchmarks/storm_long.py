"""
The long storm (issue "Proof under stress", part 2): the CI storm of
tests/stress/test_storm.py, run round after round for minutes with fresh seeds, more
jobs and longer control phases. Stops at the first broken invariant and prints it with
every thread's stack.

Run: .venv/bin/python benchmarks/storm_long.py [--minutes 5] [--jobs 300] [--workers 4]
(exit status 1 if an invariant broke)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from stress._storm import run_storm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--controllers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()
    end = time.monotonic() + args.minutes * 60
    rounds = 0
    totals: Counter[str] = Counter()
    activations = 0
    seed = args.seed
    modes = [
        ("concurrent", False, False),
        ("concurrent", True, False),
        ("sequential", False, True),
        ("sequential", True, False),
        ("concurrent", False, True),
        ("sequential", False, False),
    ]
    while time.monotonic() < end:
        strategy, chaos, blocking = modes[rounds % len(modes)]
        flaky = rounds % 2 == 1
        report = run_storm(
            flaky=flaky,
            strategy=strategy,
            chaos=chaos,
            blocking=blocking,
            jobs=args.jobs,
            workers=args.workers,
            controllers=args.controllers,
            fanout=6,
            control_seconds=3.0,
            deadline=300.0,
            seed=seed,
        )
        rounds += 1
        totals.update(report.statuses)
        totals.update({f"action:{k}": v for k, v in report.actions.items()})
        activations += report.activations
        print(
            f"round {rounds} seed {seed} {strategy} chaos={chaos} blocking={blocking} "
            f"retries={flaky}: "
            f"{dict(report.statuses)} "
            f"{report.activations} activations in {report.seconds:.1f} s",
            flush=True,
        )
        if report.problems:
            print("\n".join(report.problems[:20]))
            return 1
        seed += 1
    print(f"{rounds} rounds, {activations} activations, no invariant broken: {dict(totals)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
