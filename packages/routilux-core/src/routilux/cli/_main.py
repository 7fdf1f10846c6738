"""
The ``routilux`` command: its parser and ``main``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from routilux.exceptions import (
    InvalidStateError,
    JobNotFoundError,
    JobStoreError,
    RoutiluxError,
)
from routilux.exceptions import UsageError as _BadInput  # what the commands here raise


if TYPE_CHECKING:
    pass
from routilux.cli._checkpoints import add_checkpoint_commands
from routilux.cli._codes import (
    COMMANDS_ENTRY_POINT_GROUP,
    DEFAULT_CHECKPOINT_INTERVAL,
    DEFAULT_STORE,
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
)
from routilux.cli._common import check_text_arguments, import_modules
from routilux.cli._inspect import (
    cmd_graph,
    cmd_jobs,
    cmd_routines,
    cmd_show,
    cmd_testcase,
    cmd_validate,
)
from routilux.cli._running import cmd_cancel, cmd_pause, cmd_resume, cmd_retry, cmd_run


__all__ = [
    "build_parser",
    "main",
    "run_command",
    "silence_stdout",
]


def _add_follow(p: argparse.ArgumentParser) -> None:
    # The --follow of the commands that run a job.
    p.add_argument(
        "--follow",
        action="store_true",
        help="print the job's events live, one line each, after its progress [started/known]",
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="PATH|URL",
        help="the job store: a SQLite file (or sqlite: URL), or the URL of a store installed "
        f"through routilux.stores, such as postgresql:// (default: $ROUTILUX_STORE or "
        f"{DEFAULT_STORE})",
    )
    common.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import MODULE (or a .py file) first, to register routines that are not "
        "installed through entry points",
    )
    common.add_argument(
        "--keep-checkpoints",
        type=_keep,
        default=argparse.SUPPRESS,
        metavar="N|all",
        help="how many checkpoints the store keeps of each completed or cancelled job "
        "(default 100; running, paused and failed jobs keep all of theirs)",
    )
    timed = argparse.ArgumentParser(add_help=False)
    timed.add_argument(
        "--deadline",
        type=_seconds,
        metavar="SECONDS",
        help="fail the job (JobDeadlineExceeded) if this run still goes SECONDS from now; "
        "its queued work is kept for 'routilux retry'",
    )
    parser = argparse.ArgumentParser(
        prog="routilux",
        description="Run routilux flow files as jobs, and inspect, resume and cancel them.",
        epilog="exit codes: 0 completed, 1 failed, 2 bad input, 3 paused, 4 cancelled, "
        "5 completed with errors, 141 output closed early",
    )
    from routilux._version import __version__

    parser.add_argument("--version", action="version", version=f"routilux {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", parents=[common, timed], help="run a flow file as a new job")
    p.add_argument("flow_file", metavar="FLOW_FILE")
    p.add_argument(
        "--entry", metavar="ID", help="the entry routine, or ID.SLOT (default: the only one)"
    )
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="entry data; VALUE is parsed as JSON when it can be",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="N",
        help="also checkpoint after every N activations (default: only at rest)",
    )
    p.add_argument(
        "--strategy",
        choices=("sequential", "concurrent"),
        help="the job's execution strategy (default: the flow's)",
    )
    p.add_argument("--job-id", metavar="ID", help="the new job's id (default: a UUID)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    _add_follow(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_run)

    p.add_argument(
        "--checkpoint-interval",
        type=float,
        default=DEFAULT_CHECKPOINT_INTERVAL,
        metavar="SECONDS",
        help="also checkpoint once this many seconds passed since the last checkpoint, so "
        "a killed run re-runs about that much work at most (default: "
        f"{DEFAULT_CHECKPOINT_INTERVAL:g}; 0: only at rest and every N)",
    )
    p = sub.add_parser("resume", parents=[common, timed], help="continue a paused job")
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="answer the waiting HumanInput routine; VALUE is parsed as JSON when it can be",
    )
    p.add_argument("--routine", metavar="ID", help="the HumanInput routine to answer")
    p.add_argument(
        "--force", action="store_true", help="take over a job marked running whose runner is gone"
    )
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    _add_follow(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("jobs", parents=[common], help="list the jobs of the store")
    p.add_argument("--status", metavar="S", help="only jobs with this status")
    p.add_argument("--flow", metavar="ID", help="only jobs of this flow")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("show", parents=[common], help="show one job")
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_show)

    for name, what in (("cancel", "cancel a job"), ("pause", "pause a job")):
        p = sub.add_parser(name, parents=[common], help=what)
        p.add_argument("job_id", metavar="JOB_ID")
        p.add_argument(
            "--wait",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help=f"how long to wait for a running job to {name[:-1] if name == 'pause' else name}"
            " at its next step (default 10)",
        )
        p.set_defaults(func=cmd_cancel if name == "cancel" else cmd_pause)

    p = sub.add_parser(
        "retry", parents=[common, timed], help="run a failed job's failed work again"
    )
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    _add_follow(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser(
        "testcase", parents=[common], help="write a pytest test that replays a completed job"
    )
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("-o", "--output", metavar="FILE", help="write the test here (default: stdout)")
    p.set_defaults(func=cmd_testcase)

    p = sub.add_parser("routines", parents=[common], help="list the registered routines")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_routines)

    p = sub.add_parser("validate", parents=[common], help="check a flow file")
    p.add_argument("flow_file", metavar="FLOW_FILE")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("graph", parents=[common], help="draw a flow file, or a stored job's flow")
    p.add_argument("flow_file", metavar="FLOW_FILE", nargs="?")
    p.add_argument(
        "--job",
        metavar="JOB_ID",
        help="draw this job's flow from the store, each routine coloured by its state",
    )
    p.add_argument(
        "--format",
        choices=("mermaid", "dot", "svg", "png"),
        default="mermaid",
        help="text (mermaid, dot) or an image drawn by Graphviz's dot program (svg, png; "
        "needs the graphviz system package)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the picture here (default: stdout)"
    )
    p.set_defaults(func=cmd_graph)

    add_checkpoint_commands(sub, common)

    for ep in entry_points(group=COMMANDS_ENTRY_POINT_GROUP):
        try:
            register = ep.load()
        except ImportError:
            continue  # the extra that provides it is not installed
        register(sub)
    return parser


def _keep(text: str) -> int | None:
    # --keep-checkpoints: a positive count, or "all".
    if text == "all":
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        msg = f"expected a positive number or 'all', got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return count


def _seconds(text: str) -> float:
    # --deadline: a number of seconds > 0.
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        msg = f"expected a number of seconds > 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the ``routilux`` command with ``argv`` (``sys.argv[1:]`` by default); return the
    exit code.
    """
    try:
        try:
            code = run_command(argv)
        except SystemExit:  # argparse's --help, --version and usage errors
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        # The reader went away (``routilux show JOB | head``): stop quietly, as the Python
        # docs recommend (see the signal module), with the exit code of a process killed by
        # SIGPIPE.
        silence_stdout()
        return EXIT_BROKEN_PIPE
    return code


def run_command(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        check_text_arguments(args)
        import_modules(getattr(args, "imports", None))
        return func(args)
    except _BadInput as exc:
        print(f"routilux: error: {exc}", file=sys.stderr)
    except (JobNotFoundError, InvalidStateError, JobStoreError) as exc:
        print(f"routilux: error: {exc}", file=sys.stderr)
    except RoutiluxError as exc:
        print(f"routilux: error: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT


def silence_stdout() -> None:
    # Point stdout at devnull so that the interpreter's last flush cannot fail again.
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (an in-process caller's buffer): nothing to flush
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
