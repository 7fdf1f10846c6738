"""
The subcommands of a job's checkpoint log: ``checkpoints`` (list them) and ``fork`` (a
new paused job from one of them).
"""

from __future__ import annotations

import argparse
import json

from routilux.cli._codes import EXIT_COMPLETED
from routilux.cli._common import fmt_time, open_store_of, parse_assignments
from routilux.cli._outcome import resume_hints


__all__ = ["add_checkpoint_commands", "cmd_checkpoints", "cmd_fork"]


def add_checkpoint_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``checkpoints`` and ``fork`` to the command's subparsers."""
    p = sub.add_parser("checkpoints", parents=[common], help="list the checkpoints of a job")
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_checkpoints)

    p = sub.add_parser(
        "fork", parents=[common], help="make a new paused job from a checkpoint of a job"
    )
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument(
        "--at", type=int, metavar="SEQ", help="the checkpoint to fork (default: the newest)"
    )
    p.add_argument("--as", dest="new_job_id", metavar="ID", help="the new job's id")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="set a key of the fork's shared data (VALUE is JSON, else a string); repeatable",
    )
    p.set_defaults(func=cmd_fork)


def cmd_checkpoints(args: argparse.Namespace) -> int:
    store = open_store_of(args)
    try:
        infos = store.checkpoints(args.job_id)
    finally:
        store.close()
    if args.json:
        rows = [
            {
                "seq": c.seq,
                "status": c.status,
                "kind": c.kind,
                "size": c.size,
                "created_at": c.created_at,
            }
            for c in infos
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_COMPLETED
    if not infos:
        print(f"job {args.job_id} has no checkpoint yet")
        return EXIT_COMPLETED
    print(f"{'SEQ':>6}  {'STATUS':<9}  {'KIND':<5}  {'BYTES':>9}  WRITTEN")
    for c in infos:
        print(f"{c.seq:>6}  {c.status:<9}  {c.kind:<5}  {c.size:>9}  {fmt_time(c.created_at)}")
    return EXIT_COMPLETED


def cmd_fork(args: argparse.Namespace) -> int:
    shared = parse_assignments(args.set, "--set")
    store = open_store_of(args)
    try:
        record = store.fork(
            args.job_id, at=args.at, new_job_id=args.new_job_id, shared_data=shared or None
        )
    finally:
        store.close()
    origin = record.forked_from or {}
    print(
        f"forked job {record.job_id} from checkpoint {origin.get('seq')} of job "
        f"{origin.get('job_id')}; it is {record.status}"
    )
    for hint in resume_hints(record.job_id, args):
        print(f"  continue it: {hint}")
    return EXIT_COMPLETED
