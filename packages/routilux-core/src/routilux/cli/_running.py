"""
The subcommands that run jobs: ``run``, ``resume``, ``retry``, ``pause`` and ``cancel``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from routilux.exceptions import UsageError as _BadInput  # what the commands here raise
from routilux.model._lifecycle import Action, next_status


if TYPE_CHECKING:
    from routilux.engine._flow import Flow
    from routilux.model._job_state import JobState
    from routilux.store import JobRecord, JobStore
from routilux.cli._codes import EXIT_COMPLETED, EXIT_PAUSED, STATUS_EXIT
from routilux.cli._common import (
    human_input_class,
    jsonable,
    open_store_of,
    parse_assignments,
    questions_waiting,
)
from routilux.cli._follow import Follower
from routilux.cli._outcome import exit_code, print_outcome, resume_hints, show_data
from routilux.testing._testcase import job_results


__all__ = [
    "Progress",
    "cmd_cancel",
    "cmd_pause",
    "cmd_resume",
    "cmd_retry",
    "cmd_run",
    "control_stored",
    "load_flow_of",
    "run_stored",
    "runner_alive",
    "unregistered_type",
]


class Progress:
    """
    One self-rewriting status line on a terminal (routine, activations done, elapsed).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._job: JobState | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="routilux-progress", daemon=True)
        self._t0 = time.monotonic()

    def attach(self, flow: Flow, job_state: JobState) -> None:
        self._job = job_state
        self._thread.start()

    def _line(self) -> str:
        job = self._job
        tracker = job.execution_tracker if job is not None else None
        done = 0
        current = "-"
        latest = ""
        if tracker is not None:
            for rid, records in list(tracker.routine_executions.items()):
                done += len(records)
                if records:
                    end = str(records[-1].get("end_time") or records[-1].get("start_time"))
                    if end > latest:
                        latest, current = end, rid
        elapsed = time.monotonic() - self._t0
        return f"\r\x1b[2K  running · routine {current} · {done} activations · {elapsed:.1f}s"

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self._stream.write(self._line())
            self._stream.flush()

    def close(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self._stream.write("\r\x1b[2K")
            self._stream.flush()


def run_stored(
    store: JobStore,
    job_id: str,
    args: argparse.Namespace,
    prepare: Callable[[Flow, JobState], None] | None = None,
    takeover: bool = False,
    retry: bool = False,
) -> int:
    # Run or resume a stored job until it rests; the first Ctrl-C or SIGTERM pauses it
    # gracefully, a second one exits at once (see _cli_interrupt).
    from routilux.cli._interrupts import Interrupts
    from routilux.store import StoreControl, run_job

    follower = Follower(sys.stdout) if getattr(args, "follow", False) else None
    tty = sys.stderr.isatty() and not args.quiet
    progress = Progress(sys.stderr) if tty and follower is None else None
    interrupts = Interrupts(
        StoreControl(store, job_id), job_id, lambda: resume_hints(job_id, args)[0]
    )

    flows: list[Flow] = []

    def before(flow: Flow, job_state: JobState) -> None:
        flows.append(flow)
        if prepare is not None:
            prepare(flow, job_state)
        interrupts.attach(flow, job_state)
        if progress is not None:
            progress.attach(flow, job_state)
        if follower is not None:
            follower.attach(flow, job_state)

    try:
        with interrupts.installed():
            job_state = run_job(
                job_id,
                store,
                interrupts,
                prepare=before,
                takeover=takeover,
                retry=retry,
                deadline=args.deadline,
                on_event=follower,
            )
    finally:
        if progress is not None:
            progress.close()
        if follower is not None:
            follower.close()
    if args.json:
        data = show_data(store.load_job(job_id))
        data["results"] = [
            {"routine_id": rid, "event_name": event, "data": jsonable(payload)}
            for rid, event, payload in job_results(flows[0], job_state)
        ]
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        print_outcome(flows[0], job_state, sys.stdout, args)
    return exit_code(job_state.status, job_state.errors)


def load_flow_of(path: str) -> Flow:
    # Read and check a flow file; a routine type nobody registered gets the hint of --import.
    from routilux.exceptions import DeserializationError
    from routilux.persist._flowfile import flow_from_data, read_flow_file

    data = read_flow_file(path)
    try:
        return flow_from_data(data, path)
    except DeserializationError as exc:
        if unregistered_type(data, exc.path) is None:
            raise
        msg = (
            f"{exc}; to import the module or file that registers it, add --import MODULE "
            "(or --import FILE.py)"
        )
        raise _BadInput(msg) from None


def unregistered_type(data: dict[str, Any], path: str) -> str | None:
    # The routine type at ``path`` (``routines.<id>.type``) when no class is registered
    # under it, else None.
    from routilux.codec._values import format_path
    from routilux.exceptions import UnknownRoutineTypeError
    from routilux.names._routines import get_routine_class

    routines = data.get("routines")
    for rid, spec in routines.items() if isinstance(routines, dict) else ():
        name = spec.get("type") if isinstance(spec, dict) else None
        if isinstance(name, str) and path == format_path("routines", ["type", str(rid)]):
            try:
                get_routine_class(name)
            except UnknownRoutineTypeError:
                return name
    return None


def cmd_run(args: argparse.Namespace) -> int:
    from routilux.persist._flowfile import pick_entry
    from routilux.store import create_job

    params = parse_assignments(args.param, "--param")
    flow = load_flow_of(args.flow_file)
    entry, slot = pick_entry(flow, args.entry)
    if args.checkpoint_every < 0:
        msg = f"--checkpoint-every must be >= 0, got {args.checkpoint_every}"
        raise _BadInput(msg)
    if not args.checkpoint_interval >= 0:
        msg = f"--checkpoint-interval must be >= 0, got {args.checkpoint_interval}"
        raise _BadInput(msg)
    options: dict[str, Any] = {
        "checkpoint_every": args.checkpoint_every,
        "checkpoint_interval": args.checkpoint_interval,
    }
    if args.strategy:
        options["execution_strategy"] = args.strategy
    data = flow.serialize()
    # Everything is checked: only now is the store touched.
    store = open_store_of(args, must_exist=False)
    try:
        job_id = create_job(
            store, data, entry, params, job_id=args.job_id, entry_slot=slot, options=options
        )
        return run_stored(store, job_id, args)
    finally:
        store.close()


def runner_alive(record: JobRecord) -> bool:
    # A job the store says is running: is its runner (on this host) still alive?
    from routilux.store import default_worker_id

    if not record.worker:
        return False
    host, _, pid = record.worker.rpartition(":")
    if host != default_worker_id().rpartition(":")[0] or not pid.isdigit():
        return True  # another host: assume alive unless told otherwise (--force)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cmd_resume(args: argparse.Namespace) -> int:
    values = parse_assignments(args.set, "--set")
    store = open_store_of(args)
    try:
        record = store.load_job(args.job_id)
        takeover = False
        if record.status == "running":
            if runner_alive(record) and not args.force:
                msg = (
                    f"job {args.job_id} is running on {record.worker}; "
                    "pass --force if that process is gone"
                )
                raise _BadInput(msg)
            takeover = True
        elif record.status == "completed":
            msg = f"job {args.job_id} is completed; nothing to resume"
            raise _BadInput(msg)
        else:
            next_status(record.status, Action.RESUME, job_id=args.job_id)

        def answer(flow: Flow, job_state: JobState) -> None:
            if not values:
                return
            cls = human_input_class()
            waiting = questions_waiting(job_state)
            target = args.routine
            if target is None:
                if len(waiting) != 1:
                    listed = ", ".join(sorted(waiting)) or "none"
                    msg = (
                        f"job {args.job_id} waits for input in {len(waiting)} routines "
                        f"({listed}); name one with --routine"
                    )
                    raise _BadInput(msg)
                target = next(iter(waiting))
            if cls is None or target not in waiting:
                listed = ", ".join(sorted(waiting)) or "none"
                msg = (
                    f"routine {target!r} of job {args.job_id} waits for no input "
                    f"(waiting: {listed})"
                )
                raise _BadInput(msg)
            cls.provide_answer(job_state, target, **values)

        return run_stored(store, args.job_id, args, prepare=answer, takeover=takeover)
    finally:
        store.close()


def cmd_cancel(args: argparse.Namespace) -> int:
    return control_stored(args, Action.CANCEL)


def cmd_pause(args: argparse.Namespace) -> int:
    return control_stored(args, Action.PAUSE)


def control_stored(args: argparse.Namespace, action: Action) -> int:
    # Pause or cancel a stored job: a running one through a control request its runner
    # applies at its next activation boundary (waiting --wait seconds for it to rest), any
    # other at once in the store, as the lifecycle table allows.
    store = open_store_of(args)
    verb = action.value
    try:
        record = store.load_job(args.job_id)
        status = record.status
        if status == "completed":
            msg = f"job {args.job_id} is completed; nothing to {verb}"
            raise _BadInput(msg)
        target = next_status(status, action, job_id=args.job_id)
        if status == "running" and runner_alive(record):
            store.request_control(args.job_id, verb)
            status = store.wait_settled(args.job_id, args.wait)
            if status == "running":
                print(f"job {args.job_id}: {verb} requested; its runner stops at the next step")
                return EXIT_COMPLETED
        elif target != status:
            store.set_status(args.job_id, target)
            status = target
    finally:
        store.close()
    print(f"job {args.job_id} {status}")
    if status == "paused":
        for hint in resume_hints(args.job_id, args):
            print(f"  resume with: {hint}")
        return EXIT_PAUSED
    return STATUS_EXIT.get(status, EXIT_COMPLETED) if status != "cancelled" else EXIT_COMPLETED


def cmd_retry(args: argparse.Namespace) -> int:
    store = open_store_of(args)
    try:
        record = store.load_job(args.job_id)
        next_status(record.status, Action.RETRY, job_id=args.job_id)
        return run_stored(store, args.job_id, args, retry=True)
    finally:
        store.close()
