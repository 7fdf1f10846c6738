"""
The ``routilux worker`` and ``routilux db`` subcommands (a ``routilux.commands`` entry point).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from typing import Any

from routilux.cli import UsageError
from routilux.exceptions import JobStoreError
from routilux_postgres._queue import DEFAULT_REAP_EVERY


__all__ = ["register"]

_CONNECT_TIMEOUT = 10
"""Seconds the worker waits for its first connection before it gives up (exit 2)."""


def _dsn(args: argparse.Namespace) -> str:
    dsn = args.dsn or os.environ.get("ROUTILUX_DSN")
    if not dsn:
        msg = "give --dsn or set ROUTILUX_DSN"
        raise UsageError(msg)
    return str(dsn)


def _check_worker_options(args: argparse.Namespace) -> None:
    # Bad numbers and a bad cron are usage errors (exit 2), found before anything starts.
    def positive(option: str, value: float) -> None:
        if not math.isfinite(value) or value <= 0:
            msg = f"{option} must be a positive number of seconds, got {value}"
            raise UsageError(msg)

    if args.concurrency < 1:
        msg = f"--concurrency must be at least 1, got {args.concurrency}"
        raise UsageError(msg)
    if args.max_attempts < 1:
        msg = f"--max-attempts must be at least 1, got {args.max_attempts}"
        raise UsageError(msg)
    positive("--heartbeat", args.heartbeat)
    positive("--stall-timeout", args.stall_timeout)
    positive("--poll-interval", args.poll_interval)
    if args.stall_timeout <= args.heartbeat:
        msg = (
            f"--stall-timeout ({args.stall_timeout}) must be longer than "
            f"--heartbeat ({args.heartbeat})"
        )
        raise UsageError(msg)
    for option, value in (
        ("--shutdown-timeout", args.shutdown_timeout),
        ("--reap-every", args.reap_every),
    ):
        if value is not None and (not math.isfinite(value) or value < 0):
            msg = f"{option} must be a number of seconds >= 0, got {value}"
            raise UsageError(msg)


def _check_reachable(dsn: str) -> None:
    # One plain connection first: an unreachable database is a clear error at once, not
    # a pool timeout (and a traceback) after 30 seconds.
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=_CONNECT_TIMEOUT):
            pass
    except psycopg.Error as exc:
        msg = f"cannot reach the job store database: {exc}"
        raise JobStoreError(msg) from None


def _cmd_worker(args: argparse.Namespace) -> int:
    import psycopg
    import psycopg_pool

    from routilux_postgres._backend import PostgresBackend

    _check_worker_options(args)
    dsn = _dsn(args)
    _check_reachable(dsn)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    backend = PostgresBackend(
        dsn,
        queue=args.queue,
        stall_timeout=args.stall_timeout,
        max_attempts=args.max_attempts,
        heartbeat=args.heartbeat,
    )
    try:
        backend.run_worker(
            concurrency=args.concurrency,
            name=args.name,
            reap_every=args.reap_every or None,
            shutdown_timeout=args.shutdown_timeout,
            poll_interval=args.poll_interval,
        )
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
        # The database went away between the check and the worker's pool.
        msg = f"cannot reach the job store database: {exc}"
        raise JobStoreError(msg) from None
    return 0


def _cmd_db(args: argparse.Namespace) -> int:
    from routilux_postgres._schema import SCHEMA_VERSION, migrate

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
        "--reap-every",
        type=float,
        default=DEFAULT_REAP_EVERY,
        metavar="S",
        help=f"seconds between two runs of the worker's reaper ({DEFAULT_REAP_EVERY:g}; 0: never)",
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
