"""
The ``routilux`` command: run flow files as jobs on a job store, and inspect, resume and
cancel those jobs from any process.

Exit codes: 0 completed (or success), 1 failed, 2 bad input or usage, 3 paused, 4 cancelled,
5 completed with errors (a handler raised and the job went on without that activation)
(141: standard output was closed early, as in ``routilux show JOB | head``).
Other packages add subcommands through the ``routilux.commands`` entry-point group: each
entry point names a callable ``register(subparsers)`` that adds its parsers and sets
``func(args) -> int`` as their default.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TextIO

from routilux.cli._interrupts import EXIT_INTERRUPTED
from routilux.exceptions import (
    InvalidStateError,
    JobNotFoundError,
    JobStoreError,
    RoutiluxError,
)
from routilux.exceptions import UsageError as _BadInput  # what the commands here raise
from routilux.model._lifecycle import Action, next_status


if TYPE_CHECKING:
    from routilux.engine._flow import Flow
    from routilux.model._job_state import JobState
    from routilux.store import JobRecord, JobStore


__all__ = [
    "COMMANDS_ENTRY_POINT_GROUP",
    "DEFAULT_CHECKPOINT_INTERVAL",
    "DEFAULT_STORE",
    "EXIT_BAD_INPUT",
    "EXIT_BROKEN_PIPE",
    "EXIT_CANCELLED",
    "EXIT_COMPLETED",
    "EXIT_COMPLETED_WITH_ERRORS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_PAUSED",
    "main",
]

DEFAULT_CHECKPOINT_INTERVAL = 1.0
"""Seconds between the time-driven checkpoints of ``routilux run`` by default."""

DEFAULT_STORE = os.path.join(".routilux", "jobs.db")
"""The job store used when neither ``--store`` nor ``ROUTILUX_STORE`` names one."""

COMMANDS_ENTRY_POINT_GROUP = "routilux.commands"
"""The entry-point group of extra subcommands (``name = "module:register"``)."""

EXIT_COMPLETED = 0
"""Exit code: the job completed (or the command succeeded)."""
EXIT_FAILED = 1
"""Exit code: the job failed."""
EXIT_BAD_INPUT = 2
"""Exit code: bad input or usage; nothing was changed in the store."""
EXIT_PAUSED = 3
"""Exit code: the job is paused (for example waiting for a person)."""
EXIT_CANCELLED = 4
"""Exit code: the job is cancelled."""
EXIT_COMPLETED_WITH_ERRORS = 5
"""Exit code: the job completed, but handlers raised errors it recorded and went on without
(an activation that failed for good; errors a retry recovered from, or that failed the job
before ``routilux retry`` ran it again, do not count)."""
EXIT_BROKEN_PIPE = 141
"""Exit code: standard output was closed early (``| head``), as after SIGPIPE (128 + 13)."""

_STATUS_EXIT = {
    "completed": EXIT_COMPLETED,
    "failed": EXIT_FAILED,
    "paused": EXIT_PAUSED,
    "cancelled": EXIT_CANCELLED,
}


# -- helpers ----------------------------------------------------------------------------


def _parse_assignments(items: Sequence[str] | None, option: str) -> dict[str, Any]:
    # KEY=VALUE pairs; VALUE is JSON when it parses as JSON, else the plain string.
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            msg = f"{option} expects KEY=VALUE, got {item!r}"
            raise _BadInput(msg)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
        if not _is_text(json.dumps([key, out[key]], ensure_ascii=False)):
            msg = (
                f"{option} {item!r}: not valid Unicode text (bytes that are not UTF-8, or "
                "a lone surrogate escape such as \\ud800); no store can keep it"
            )
            raise _BadInput(msg)
    return out


def _is_text(value: str) -> bool:
    # Whether ``value`` can be written as UTF-8 (what a job store keeps): command-line bytes
    # that are not UTF-8 arrive as lone surrogates, and so does a "\ud800" JSON escape.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: Arguments that are names or paths of the machine (files, modules), not data for a store.
_PATH_ARGUMENTS = frozenset({"flow_file", "store", "imports"})


def _check_text_arguments(args: argparse.Namespace) -> None:
    # Refuse a job id, entry, routine, status or flow name the store could not keep or find.
    for name, value in vars(args).items():
        if name in _PATH_ARGUMENTS:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and not _is_text(item):
                msg = f"{name.replace('_', ' ')} {item!r} is not valid UTF-8 text"
                raise _BadInput(msg)


def _open_store(args: argparse.Namespace, must_exist: bool = True) -> JobStore:
    # --store (else $ROUTILUX_STORE, else DEFAULT_STORE): a SQLite file, or the URL of a store
    # installed through the routilux.stores entry points (postgresql:// in routilux-postgres).
    from routilux.store import open_store, sqlite_path

    target = args.store or os.environ.get("ROUTILUX_STORE") or DEFAULT_STORE
    path = sqlite_path(target)
    if must_exist and path is not None and path != ":memory:" and not os.path.exists(path):
        msg = f"no job store at {path!r} (run a flow first, or pass --store)"
        raise _BadInput(msg)
    return open_store(target)


def _import_modules(modules: Sequence[str] | None) -> None:
    # Modules named with --import on the command line (never by a flow file): they register
    # routines that are not installed through entry points. Whatever their code raises is
    # bad input (exit 2), never a traceback.
    for name in modules or ():
        try:
            if name.endswith(".py"):
                _import_file(name)
            else:
                importlib.import_module(name)
        except (ImportError, OSError) as exc:
            msg = f"--import {name}: {exc}"
            raise _BadInput(msg) from None
        except Exception as exc:  # noqa: BLE001  # the module's own code failed
            msg = f"--import {name}: {type(exc).__name__}: {exc}"
            raise _BadInput(msg) from None


def _import_file(path: str) -> None:
    # The module is named after the file's resolved path: two files with one name (pa/x.py,
    # pb/x.py) are two modules, and importing the same file again does nothing.
    import hashlib
    import importlib.util

    resolved = os.path.realpath(path)
    stem = os.path.splitext(os.path.basename(resolved))[0]
    digest = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    name = f"routilux_cli_import_{stem}_{digest}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        msg = f"cannot import {path!r}"
        raise ImportError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        # Never leave a half-executed module behind.
        if sys.modules.get(name) is module:
            del sys.modules[name]
        raise


def _human_input() -> Any:
    # HumanInput comes from routilux-stdlib through the registry (core never imports it).
    from routilux.exceptions import UnknownRoutineTypeError
    from routilux.names._routines import get_routine_class

    try:
        cls = get_routine_class("HumanInput")
    except UnknownRoutineTypeError:
        return None
    return cls if hasattr(cls, "waiting") and hasattr(cls, "provide_answer") else None


def _waiting(job_state: JobState) -> dict[str, dict[str, Any]]:
    cls = _human_input()
    if cls is None:
        return {}
    waiting: dict[str, dict[str, Any]] = cls.waiting(job_state)
    return waiting


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _fmt_time(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _resume_hints(
    job_id: str, args: argparse.Namespace | None, waiting: Collection[str] = ()
) -> list[str]:
    # The commands that resume ``job_id``, as they work when typed: the same store (when one
    # was named, by --store or ROUTILUX_STORE), the same --import arguments, and the --set
    # answer of a waiting HumanInput (with --routine when several wait). Shared by run,
    # resume and show.
    words = ["routilux", "resume", job_id]
    store = getattr(args, "store", None) or os.environ.get("ROUTILUX_STORE")
    if store:
        words += ["--store", store]
    for name in getattr(args, "imports", None) or ():
        words += ["--import", name]
    command = " ".join(shlex.quote(word) for word in words)
    if not waiting:
        return [command]
    if len(waiting) == 1:
        return [f"{command} --set answer=VALUE"]
    return [f"{command} --routine {shlex.quote(rid)} --set answer=VALUE" for rid in sorted(waiting)]


def _print_outcome(
    flow: Flow, job_state: JobState, out: TextIO, args: argparse.Namespace | None = None
) -> None:
    status = job_state.status
    print(f"job {job_state.job_id} {status}", file=out)
    for error in job_state.errors:
        print(f"  {_error_line(error.serialize())}", file=out)
    for entry in job_state.output_log:
        data = json.dumps(_jsonable(entry.get("data")), ensure_ascii=False)
        print(f"  output {entry.get('routine_id')}.{entry.get('output_type')}: {data}", file=out)
    for rid, event, data in _results(flow, job_state):
        payload = json.dumps(_jsonable(data), ensure_ascii=False)
        print(f"  result {rid}.{event}: {payload}", file=out)
    if status == "paused":
        waiting = _waiting(job_state)
        for rid, request in waiting.items():
            print(f"  waiting: {rid} asks {request.get('question')!r}", file=out)
        for hint in _resume_hints(job_state.job_id, args, waiting):
            print(f"  resume with: {hint}", file=out)


def _error_line(error: dict[str, Any]) -> str:
    # One line per recorded error: where, which attempt, what the strategy did, what.
    how = error.get("strategy")
    what = (
        "retried"
        if how == "retry"
        else {"stop": "stopped the job", "skip": "skipped"}.get(str(how), "went on without it")
    )
    return (
        f"error in {error.get('routine_id')}.{error.get('slot')} "
        f"(attempt {error.get('attempt')}, {what}): "
        f"{error.get('error_type')}: {error.get('message')}"
    )


def _exit_code(status: str, errors: Sequence[Any]) -> int:
    # The exit code of a job: its status, and 5 for a completed job that lost work to errors.
    # (A completed job's "stop" errors were all run again by a retry of the job.)
    code = _STATUS_EXIT.get(status, EXIT_FAILED)
    if code == EXIT_COMPLETED and any(e.strategy in ("continue", "skip") for e in errors):
        return EXIT_COMPLETED_WITH_ERRORS
    return code


def _results(flow: Flow, job_state: JobState) -> list[tuple[str, str, Any]]:
    # The events of the job's last routines: emitted events that reached no slot (leaves
    # of the flow), read from the history. Kept in the job's order.
    flow_targets: set[tuple[str, str]] = set()
    for conn in flow.connections:
        if conn.source_event is not None:
            flow_targets.add((str(conn.source_routine_id), conn.source_event.name))
    out = []
    for record in job_state.get_execution_history():
        routine = flow.routines.get(record.routine_id)
        event = routine.get_event(record.event_name) if routine is not None else None
        if event is None or (record.routine_id, record.event_name) in flow_targets:
            continue
        if event.connected_slots:
            continue  # wired outside flow.connect (a routine's internal loop)
        out.append((record.routine_id, record.event_name, record.data))
    return out


class _Progress:
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


def _run_stored(
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

    progress = _Progress(sys.stderr) if sys.stderr.isatty() and not args.quiet else None
    interrupts = Interrupts(
        StoreControl(store, job_id), job_id, lambda: _resume_hints(job_id, args)[0]
    )

    flows: list[Flow] = []

    def before(flow: Flow, job_state: JobState) -> None:
        flows.append(flow)
        if prepare is not None:
            prepare(flow, job_state)
        interrupts.attach(flow, job_state)
        if progress is not None:
            progress.attach(flow, job_state)

    try:
        with interrupts.installed():
            job_state = run_job(
                job_id, store, interrupts, prepare=before, takeover=takeover, retry=retry
            )
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        data = _show_data(store.load_job(job_id))
        data["results"] = [
            {"routine_id": rid, "event_name": event, "data": _jsonable(payload)}
            for rid, event, payload in _results(flows[0], job_state)
        ]
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        _print_outcome(flows[0], job_state, sys.stdout, args)
    return _exit_code(job_state.status, job_state.errors)


# -- commands ---------------------------------------------------------------------------


def _load_flow(path: str) -> Flow:
    # Read and check a flow file; a routine type nobody registered gets the hint of --import.
    from routilux.exceptions import DeserializationError
    from routilux.persist._flowfile import flow_from_data, read_flow_file

    data = read_flow_file(path)
    try:
        return flow_from_data(data, path)
    except DeserializationError as exc:
        if _unregistered_type(data, exc.path) is None:
            raise
        msg = (
            f"{exc}; to import the module or file that registers it, add --import MODULE "
            "(or --import FILE.py)"
        )
        raise _BadInput(msg) from None


def _unregistered_type(data: dict[str, Any], path: str) -> str | None:
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


def _cmd_run(args: argparse.Namespace) -> int:
    from routilux.persist._flowfile import pick_entry
    from routilux.store import create_job

    params = _parse_assignments(args.param, "--param")
    flow = _load_flow(args.flow_file)
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
    store = _open_store(args, must_exist=False)
    try:
        job_id = create_job(
            store, data, entry, params, job_id=args.job_id, entry_slot=slot, options=options
        )
        return _run_stored(store, job_id, args)
    finally:
        store.close()


def _runner_alive(record: JobRecord) -> bool:
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


def _cmd_resume(args: argparse.Namespace) -> int:
    values = _parse_assignments(args.set, "--set")
    store = _open_store(args)
    try:
        record = store.load_job(args.job_id)
        takeover = False
        if record.status == "running":
            if _runner_alive(record) and not args.force:
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
            cls = _human_input()
            waiting = _waiting(job_state)
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

        return _run_stored(store, args.job_id, args, prepare=answer, takeover=takeover)
    finally:
        store.close()


def _record_line(record: JobRecord) -> str:
    if record.damaged is not None:
        # The row cannot be decoded: say so where the status goes, and why at the end.
        return (
            f"{record.job_id}  {'damaged':<9}  {record.flow_id!s:<20}  "
            f"{_fmt_time(record.updated_at)}  ({record.damaged})"
        )
    return (
        f"{record.job_id}  {record.status:<9}  {record.flow_id:<20}  {_fmt_time(record.updated_at)}"
    )


def _cmd_jobs(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        records = store.list_jobs(status=args.status, flow_id=args.flow)
    finally:
        store.close()
    if args.json:
        rows = [
            {
                "job_id": r.job_id,
                "status": r.status,
                "flow_id": r.flow_id,
                "entry_routine_id": r.entry_routine_id,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
                "attempt": r.attempt,
                "damaged": r.damaged,
            }
            for r in records
        ]
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_COMPLETED
    if not records:
        print("no jobs")
        return EXIT_COMPLETED
    print(f"{'JOB ID':<36}  {'STATUS':<9}  {'FLOW':<20}  UPDATED")
    for record in records:
        print(_record_line(record))
    return EXIT_COMPLETED


def _show_data(record: JobRecord) -> dict[str, Any]:
    state = record.state or {}
    return {
        "job_id": record.job_id,
        "flow_id": record.flow_id,
        "status": record.status,
        "entry_routine_id": record.entry_routine_id,
        "entry_params": record.entry_params,
        "options": record.options,
        "attempt": record.attempt,
        "worker": record.worker,
        "requested": record.requested,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "routine_states": state.get("routine_states", {}),
        "history": state.get("execution_history", []),
        "outputs": state.get("output_log", []),
        "shared_data": state.get("shared_data", {}),
        "errors": state.get("errors", []),
        "pending_tasks": len(state.get("pending_tasks") or []),
        "failed_tasks": len(state.get("failed_tasks") or []),
        "pause_points": state.get("pause_points", []),
    }


def _stored_job_state(record: JobRecord) -> JobState | None:
    # The job's checkpoint as a JobState (None before the first one); a state that does not
    # load is a damaged job, reported like a row that cannot be decoded.
    from routilux.exceptions import DeserializationError
    from routilux.model._job_state import JobState

    if record.state is None:
        return None
    job_state = JobState()
    try:
        job_state.deserialize(record.state)
    except DeserializationError as exc:
        msg = f"job {record.job_id!r} is damaged in the store: state_json: {exc}"
        raise JobStoreError(msg, job_id=record.job_id) from None
    return job_state


def _cmd_show(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        record = store.load_job(args.job_id)
    finally:
        store.close()
    job_state = _stored_job_state(record)
    data = _show_data(record)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return EXIT_COMPLETED
    print(f"job      {record.job_id}")
    print(f"flow     {record.flow_id} (version {record.fingerprint[:12]})")
    print(
        f"status   {record.status}"
        + (f" ({record.requested} requested)" if record.requested else "")
    )
    print(f"entry    {record.entry_routine_id} {json.dumps(record.entry_params)}")
    print(f"created  {_fmt_time(record.created_at)}   updated {_fmt_time(record.updated_at)}")
    print(f"attempt  {record.attempt}" + (f" on {record.worker}" if record.worker else ""))
    print("routines:")
    for rid, state in data["routine_states"].items():
        if not isinstance(state, dict) or rid.startswith("_"):
            continue
        extra = f"  error: {state['error']}" if state.get("error") else ""
        count = state.get("activation_count", "")
        print(f"  {rid:<20} {state.get('status', '?'):<10} activations {count}{extra}")
    print("history:")
    for item in data["history"]:
        payload = json.dumps(item.get("data"), ensure_ascii=False, default=str)
        if len(payload) > 80:
            payload = payload[:77] + "..."
        print(
            f"  {item.get('timestamp', '')[11:23]}  "
            f"{item.get('routine_id')}.{item.get('event_name')}  {payload}"
        )
    if data["errors"]:
        print("errors:")
        for error in data["errors"]:
            print(f"  {_error_line(error)}")
    if data["outputs"]:
        print("outputs:")
        for entry in data["outputs"]:
            payload = json.dumps(entry.get("data"), ensure_ascii=False, default=str)
            print(f"  {entry.get('routine_id')}.{entry.get('output_type')}: {payload}")
    if data["pending_tasks"]:
        print(f"pending activations: {data['pending_tasks']}")
    if data["failed_tasks"]:
        print(f"failed activations (run again by retry): {data['failed_tasks']}")
    if record.status == "paused" and job_state is not None:
        waiting = _waiting(job_state)
        for rid, request in waiting.items():
            print(f"waiting: {rid} asks {request.get('question')!r}")
        for hint in _resume_hints(record.job_id, args, waiting):
            print(f"resume with: {hint}")
    return EXIT_COMPLETED


def _cmd_cancel(args: argparse.Namespace) -> int:
    return _control_stored(args, Action.CANCEL)


def _cmd_pause(args: argparse.Namespace) -> int:
    return _control_stored(args, Action.PAUSE)


def _control_stored(args: argparse.Namespace, action: Action) -> int:
    # Pause or cancel a stored job: a running one through a control request its runner
    # applies at its next activation boundary (waiting --wait seconds for it to rest), any
    # other at once in the store, as the lifecycle table allows.
    store = _open_store(args)
    verb = action.value
    try:
        record = store.load_job(args.job_id)
        status = record.status
        if status == "completed":
            msg = f"job {args.job_id} is completed; nothing to {verb}"
            raise _BadInput(msg)
        target = next_status(status, action, job_id=args.job_id)
        if status == "running" and _runner_alive(record):
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
        for hint in _resume_hints(args.job_id, args):
            print(f"  resume with: {hint}")
        return EXIT_PAUSED
    return _STATUS_EXIT.get(status, EXIT_COMPLETED) if status != "cancelled" else EXIT_COMPLETED


def _cmd_retry(args: argparse.Namespace) -> int:
    store = _open_store(args)
    try:
        record = store.load_job(args.job_id)
        next_status(record.status, Action.RETRY, job_id=args.job_id)
        return _run_stored(store, args.job_id, args, retry=True)
    finally:
        store.close()


def _cmd_testcase(args: argparse.Namespace) -> int:
    from routilux.testing import write_testcase

    store = _open_store(args)
    try:
        source = write_testcase(store, args.job_id, imports=args.imports or ())
    finally:
        store.close()
    if args.output is None:
        sys.stdout.write(source)
        return EXIT_COMPLETED
    directory = os.path.dirname(args.output)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write(source)
    print(f"wrote {args.output}: run it with pytest")
    return EXIT_COMPLETED


def _cmd_routines(args: argparse.Namespace) -> int:
    from routilux.names._routines import list_routines

    rows: list[dict[str, Any]] = []
    for name, cls in sorted(list_routines().items()):
        try:
            routine = cls()
        except Exception as exc:  # noqa: BLE001  # a routine that needs arguments is still listed
            rows.append(
                {
                    "name": name,
                    "class": f"{cls.__module__}.{cls.__qualname__}",
                    "error": f"cannot be built without arguments: {exc!r}",
                }
            )
            continue
        rows.append(
            {
                "name": name,
                "class": f"{cls.__module__}.{cls.__qualname__}",
                "slots": list(routine._slots),
                "events": {n: list(e.output_params) for n, e in routine._events.items()},
                "config": _jsonable(routine.config()),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_COMPLETED
    for row in rows:
        print(f"{row['name']}  ({row['class']})")
        if "error" in row:
            print(f"  {row['error']}")
            continue
        print(f"  slots:  {', '.join(row['slots']) or '-'}")
        events = ", ".join(f"{n}({', '.join(p)})" for n, p in row["events"].items())
        print(f"  events: {events or '-'}")
        config = ", ".join(f"{k}={json.dumps(v)}" for k, v in row["config"].items())
        print(f"  config: {config or '-'}")
    return EXIT_COMPLETED


def _cmd_validate(args: argparse.Namespace) -> int:
    from routilux.persist._flowfile import entry_candidates

    flow = _load_flow(args.flow_file)
    entries = entry_candidates(flow)
    print(
        f"{args.flow_file}: ok: flow {flow.flow_id!r}, {len(flow.routines)} routines, "
        f"{len(flow.connections)} connections, entry "
        + (", ".join(entries) if entries else "none (pass --entry to run)")
    )
    return EXIT_COMPLETED


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_graph(flow_data: dict[str, Any], fmt: str) -> str:
    """
    Draw a serialized flow as Mermaid (``fmt="mermaid"``) or Graphviz dot (``"dot"``) text.
    """
    routines: dict[str, Any] = flow_data.get("routines") or {}
    connections: list[dict[str, Any]] = flow_data.get("connections") or []
    flow_id = str(flow_data.get("flow_id", "flow"))
    ids = {rid: f"r{i}" for i, rid in enumerate(routines)}
    lines: list[str] = []
    if fmt == "mermaid":
        lines.append("flowchart LR")
        for rid, spec in routines.items():
            kind = spec.get("type", "?") if isinstance(spec, dict) else "?"
            lines.append(f'    {ids[rid]}["{_quote(rid)}<br/><small>{_quote(str(kind))}</small>"]')
        for conn in connections:
            src, dst = ids.get(conn["source_routine_id"]), ids.get(conn["target_routine_id"])
            label = f"{conn['source_event']} → {conn['target_slot']}"
            lines.append(f'    {src} -- "{_quote(label)}" --> {dst}')
    else:
        lines.append(f'digraph "{_quote(flow_id)}" {{')
        lines.append("    rankdir=LR;")
        lines.append('    node [shape=box, style=rounded, fontname="Helvetica"];')
        for rid, spec in routines.items():
            kind = spec.get("type", "?") if isinstance(spec, dict) else "?"
            lines.append(f'    "{_quote(rid)}" [label="{_quote(rid)}\\n{_quote(str(kind))}"];')
        for conn in connections:
            label = f"{conn['source_event']} → {conn['target_slot']}"
            lines.append(
                f'    "{_quote(conn["source_routine_id"])}" -> '
                f'"{_quote(conn["target_routine_id"])}" [label="{_quote(label)}"];'
            )
        lines.append("}")
    return "\n".join(lines) + "\n"


def _cmd_graph(args: argparse.Namespace) -> int:
    flow = _load_flow(args.flow_file)
    sys.stdout.write(render_graph(flow.serialize(), args.format))
    return EXIT_COMPLETED


# -- parser -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
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
    parser = argparse.ArgumentParser(
        prog="routilux",
        description="Run routilux flow files as jobs, and inspect, resume and cancel them.",
        epilog="exit codes: 0 completed, 1 failed, 2 bad input, 3 paused, 4 cancelled, "
        "5 completed with errors, 141 output closed early",
    )
    from routilux._version import __version__

    parser.add_argument("--version", action="version", version=f"routilux {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", parents=[common], help="run a flow file as a new job")
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
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_run)

    p.add_argument(
        "--checkpoint-interval",
        type=float,
        default=DEFAULT_CHECKPOINT_INTERVAL,
        metavar="SECONDS",
        help="also checkpoint once this many seconds passed since the last checkpoint, so "
        "a killed run re-runs about that much work at most (default: "
        f"{DEFAULT_CHECKPOINT_INTERVAL:g}; 0: only at rest and every N)",
    )
    p = sub.add_parser("resume", parents=[common], help="continue a paused job")
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
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_resume)

    p = sub.add_parser("jobs", parents=[common], help="list the jobs of the store")
    p.add_argument("--status", metavar="S", help="only jobs with this status")
    p.add_argument("--flow", metavar="ID", help="only jobs of this flow")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_jobs)

    p = sub.add_parser("show", parents=[common], help="show one job")
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_show)

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
        p.set_defaults(func=_cmd_cancel if name == "cancel" else _cmd_pause)

    p = sub.add_parser("retry", parents=[common], help="run a failed job's failed work again")
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_retry)

    p = sub.add_parser(
        "testcase", parents=[common], help="write a pytest test that replays a completed job"
    )
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("-o", "--output", metavar="FILE", help="write the test here (default: stdout)")
    p.set_defaults(func=_cmd_testcase)

    p = sub.add_parser("routines", parents=[common], help="list the registered routines")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_routines)

    p = sub.add_parser("validate", parents=[common], help="check a flow file")
    p.add_argument("flow_file", metavar="FLOW_FILE")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("graph", parents=[common], help="draw a flow file")
    p.add_argument("flow_file", metavar="FLOW_FILE")
    p.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    p.set_defaults(func=_cmd_graph)

    for ep in entry_points(group=COMMANDS_ENTRY_POINT_GROUP):
        try:
            register = ep.load()
        except ImportError:
            continue  # the extra that provides it is not installed
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the ``routilux`` command with ``argv`` (``sys.argv[1:]`` by default); return the
    exit code.
    """
    try:
        try:
            code = _main(argv)
        except SystemExit:  # argparse's --help, --version and usage errors
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        # The reader went away (``routilux show JOB | head``): stop quietly, as the Python
        # docs recommend (see the signal module), with the exit code of a process killed by
        # SIGPIPE.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        _check_text_arguments(args)
        _import_modules(getattr(args, "imports", None))
        return func(args)
    except _BadInput as exc:
        print(f"routilux: error: {exc}", file=sys.stderr)
    except (JobNotFoundError, InvalidStateError, JobStoreError) as exc:
        print(f"routilux: error: {exc}", file=sys.stderr)
    except RoutiluxError as exc:
        print(f"routilux: error: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _silence_stdout() -> None:
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
