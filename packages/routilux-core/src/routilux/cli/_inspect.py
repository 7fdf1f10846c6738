"""
The subcommands that look at jobs and flows: ``jobs``, ``show``, ``testcase``,
``routines``, ``validate`` and ``graph``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    pass
from routilux.cli._codes import EXIT_COMPLETED
from routilux.cli._common import fmt_time, jsonable, open_store_of, questions_waiting
from routilux.cli._outcome import error_line, record_line, resume_hints, show_data, stored_job_state
from routilux.cli._running import load_flow_of
from routilux.exceptions import UsageError as _BadInput  # what the commands here raise


__all__ = [
    "cmd_graph",
    "cmd_jobs",
    "cmd_routines",
    "cmd_show",
    "cmd_testcase",
    "cmd_validate",
]


def cmd_jobs(args: argparse.Namespace) -> int:
    store = open_store_of(args)
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
    width = max(len("JOB ID"), *(len(r.job_id) for r in records))
    print(f"{'JOB ID':<{width}}  {'STATUS':<9}  {'FLOW':<20}  UPDATED")
    for record in records:
        print(record_line(record, width))
    return EXIT_COMPLETED


def cmd_show(args: argparse.Namespace) -> int:
    store = open_store_of(args)
    try:
        record = store.load_job(args.job_id)
    finally:
        store.close()
    job_state = stored_job_state(record)
    data = show_data(record)
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
    print(f"created  {fmt_time(record.created_at)}   updated {fmt_time(record.updated_at)}")
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
            print(f"  {error_line(error)}")
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
        waiting = questions_waiting(job_state)
        for rid, request in waiting.items():
            print(f"waiting: {rid} asks {request.get('question')!r}")
        for hint in resume_hints(record.job_id, args, waiting):
            print(f"resume with: {hint}")
    return EXIT_COMPLETED


def cmd_testcase(args: argparse.Namespace) -> int:
    from routilux.testing import write_testcase

    store = open_store_of(args)
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


def cmd_routines(args: argparse.Namespace) -> int:
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
                "config": jsonable(routine.config()),
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


def cmd_validate(args: argparse.Namespace) -> int:
    from routilux.persist._flowfile import entry_candidates

    flow = load_flow_of(args.flow_file)
    entries = entry_candidates(flow)
    print(
        f"{args.flow_file}: ok: flow {flow.flow_id!r}, {len(flow.routines)} routines, "
        f"{len(flow.connections)} connections, entry "
        + (", ".join(entries) if entries else "none (pass --entry to run)")
    )
    return EXIT_COMPLETED


def cmd_graph(args: argparse.Namespace) -> int:
    from routilux.graph import IMAGE_FORMATS, render_dot, render_image, render_mermaid

    if (args.flow_file is None) == (args.job is None):
        msg = "graph draws a flow file or a stored job (--job JOB_ID): name one of them"
        raise _BadInput(msg)
    if args.job is not None:
        flow, states = _job_picture(args)
    else:
        flow, states = load_flow_of(args.flow_file).serialize(), None
    if args.format in IMAGE_FORMATS:
        image = render_image(flow, args.format, states=states)
    else:
        render = render_mermaid if args.format == "mermaid" else render_dot
        image = render(flow, states).encode("utf-8")
    if args.output is not None:
        with open(args.output, "wb") as fh:
            fh.write(image)
        print(f"wrote {args.output}")
        return EXIT_COMPLETED
    if args.format != "png":
        sys.stdout.write(image.decode("utf-8"))
        return EXIT_COMPLETED
    if sys.stdout.isatty():
        msg = "a PNG picture is binary: write it to a file with -o FILE (or redirect the output)"
        raise _BadInput(msg)
    sys.stdout.flush()
    sys.stdout.buffer.write(image)
    return EXIT_COMPLETED


def _job_picture(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    # A stored job's flow (the version it runs) and its routines' states; the routines need
    # not be registered: the picture is drawn from the stored flow document.
    from routilux.graph import routine_states

    store = open_store_of(args)
    try:
        record = store.load_job(args.job)
        flow_data = store.load_flow(record.flow_id, record.fingerprint)
    finally:
        store.close()
    job_state = stored_job_state(record)
    if job_state is None:
        return flow_data, routine_states(flow_data, {})
    waiting = questions_waiting(job_state) if record.status == "paused" else {}
    return flow_data, routine_states(flow_data, job_state, waiting)
