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


__all__ = [
    "cmd_graph",
    "cmd_jobs",
    "cmd_routines",
    "cmd_show",
    "cmd_testcase",
    "cmd_validate",
    "render_graph",
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
    print(f"{'JOB ID':<36}  {'STATUS':<9}  {'FLOW':<20}  UPDATED")
    for record in records:
        print(record_line(record))
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


def _q(text: str) -> str:
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
            lines.append(f'    {ids[rid]}["{_q(rid)}<br/><small>{_q(str(kind))}</small>"]')
        for conn in connections:
            src, dst = ids.get(conn["source_routine_id"]), ids.get(conn["target_routine_id"])
            label = f"{conn['source_event']} → {conn['target_slot']}"
            lines.append(f'    {src} -- "{_q(label)}" --> {dst}')
    else:
        lines.append(f'digraph "{_q(flow_id)}" {{')
        lines.append("    rankdir=LR;")
        lines.append('    node [shape=box, style=rounded, fontname="Helvetica"];')
        for rid, spec in routines.items():
            kind = spec.get("type", "?") if isinstance(spec, dict) else "?"
            lines.append(f'    "{_q(rid)}" [label="{_q(rid)}\\n{_q(str(kind))}"];')
        for conn in connections:
            label = f"{conn['source_event']} → {conn['target_slot']}"
            lines.append(
                f'    "{_q(conn["source_routine_id"])}" -> '
                f'"{_q(conn["target_routine_id"])}" [label="{_q(label)}"];'
            )
        lines.append("}")
    return "\n".join(lines) + "\n"


def cmd_graph(args: argparse.Namespace) -> int:
    flow = load_flow_of(args.flow_file)
    sys.stdout.write(render_graph(flow.serialize(), args.format))
    return EXIT_COMPLETED
