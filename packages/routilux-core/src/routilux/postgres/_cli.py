"""
The ``routilux worker`` and ``routilux db`` subcommands (registered through the
``routilux.commands`` entry point when the postgres extra is installed).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any


__all__ = ["register"]


def _dsn(args: argparse.Namespace) -> str:
    dsn = args.dsn or os.environ.get("ROUTILUX_DSN")
    if not dsn:
        print("routilux: error: give --dsn or set ROUTILUX_DSN", file=sys.stderr)
        raise SystemExit(2)
    return str(dsn)


def _cmd_worker(args: argparse.Namespace) -> int:
    from ._backend import PostgresBackend

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    backend = PostgresBackend(
        _dsn(args),
        queue=args.queue,
        stall_timeout=args.stall_timeout,
        max_attempts=args.max_attempts,
        heartbeat=args.heartbeat,
    )
    backend.run_worker(
        concurrency=args.concurrency,
        name=args.name,
        reap_cron=None if args.reap_cron in ("", "off") else args.reap_cron,
        shutdown_timeout=args.shutdown_timeout,
        poll_interval=args.poll_interval,
    )
    return 0


def _cmd_db(args: argparse.Namespace) -> int:
    from ._schema import SCHEMA_VERSION, migrate

    for line in migrate(_dsn(args)) or ["nothing to do"]:
        print(line)
    print(f"routilux schema version {SCHEMA_VERSION}")
    return 0


def register(subparsers: Any) -> None:
    """
    Add ``worker`` and ``db`` to the ``routilux`` command.
    """
    dsn_help = "the PostgreSQL database (default: $ROUTILUX_DSN)"
    p = subparsers.add_parser(
        "worker", help="run jobs queued on PostgreSQL (until SIGTERM; twice: at once)"
    )
    p.add_argument("--dsn", metavar="DSN", help=dsn_help)
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import MODULE (or a .py file) first, to register routines",
    )
    p.add_argument("--concurrency", type=int, default=1, metavar="N", help="jobs at once (1)")
    p.add_argument("--queue", default="routilux", help="the procrastinate queue (routilux)")
    p.add_argument("--name", help="the worker's name in logs (default: host:pid)")
    p.add_argument(
        "--heartbeat", type=float, default=1.0, metavar="S", help="heartbeat period (1 s)"
    )
    p.add_argument(
        "--stall-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="a running job without heartbeat for S seconds is reaped (30)",
    )
    p.add_argument(
        "--max-attempts", type=int, default=3, metavar="N", help="runs per job before it fails (3)"
    )
    p.add_argument(
        "--reap-cron",
        default="* * * * *",
        metavar="CRON",
        help="when the reaper runs ('* * * * *': every minute; 'off': never)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=None,
        metavar="S",
        help="after SIGTERM, wait S seconds for running jobs, then requeue them (default: wait)",
    )
    p.add_argument(
        "--poll-interval", type=float, default=5.0, metavar="S", help="queue poll period (5 s)"
    )
    p.add_argument("--log-level", default="info", help="debug, info, warning or error")
    p.set_defaults(func=_cmd_worker)

    p = subparsers.add_parser("db", help="create or upgrade the PostgreSQL schema")
    p.add_argument("action", choices=("init", "migrate"), help="both create or upgrade")
    p.add_argument("--dsn", metavar="DSN", help=dsn_help)
    p.set_defaults(func=_cmd_db)
