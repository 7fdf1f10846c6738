"""
A pytest test written from a stored job: its flow, entry data and the answers a person
gave, run again with the testing kit and checked against the outputs the job recorded.
"""

from __future__ import annotations

import json
import pprint
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from routilux.engine._flow import Flow
from routilux.exceptions import JobStateError
from routilux.model._job_state import JobState
from routilux.names._imports import import_routines
from routilux.persist._protocols import JobStore
from routilux.persist._runner import load_job_state


__all__ = ["import_routines", "job_results", "write_testcase"]


def job_results(flow: Flow, job: JobState) -> list[tuple[str, str, Any]]:
    """
    Return the results of a job: the events its last routines emitted (events that no
    connection carries on), as ``(routine_id, event_name, data)`` in the job's order.
    """
    carried = {
        (str(c.source_routine_id), c.source_event.name)
        for c in flow.connections
        if c.source_event is not None
    }
    out = []
    for record in job.get_execution_history():
        routine = flow.routines.get(record.routine_id)
        event = routine.get_event(record.event_name) if routine is not None else None
        if event is None or (record.routine_id, record.event_name) in carried:
            continue
        if event.connected_slots:
            continue  # wired outside flow.connect (a routine's internal loop)
        out.append((record.routine_id, record.event_name, record.data))
    return out


def _answers(flow_doc: dict[str, Any], job: JobState) -> dict[str, list[dict[str, Any]]]:
    # The answers a person gave: the values each HumanInput emitted, in order.
    asked = {
        rid
        for rid, spec in (flow_doc.get("routines") or {}).items()
        if isinstance(spec, dict) and spec.get("type") == "HumanInput"
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for record in job.get_execution_history():
        if record.routine_id in asked and record.event_name == "output":
            out.setdefault(record.routine_id, []).append(dict(record.data.get("values") or {}))
    return out


def _volatile(recorded: Sequence[Any], replayed: Sequence[Any]) -> set[str]:
    # Keys of dict data whose values differ between two runs (times, generated ids).
    keys: set[str] = set()
    for old, new in zip(recorded, replayed, strict=False):
        if isinstance(old, dict) and isinstance(new, dict):
            keys.update(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return keys


def write_testcase(store: JobStore, job_id: str, imports: Iterable[str] = ()) -> str:
    """
    Return the source of a pytest test that replays the stored, completed job ``job_id``:
    it rebuilds the job's flow from its document, runs it at the job's entry with the
    job's entry data, gives the answers a person gave to each ``HumanInput`` question, and
    checks the outputs and results the job recorded (``assert_outputs`` per routine,
    ``assert_emitted`` per result). To find values that change from run to run (times,
    generated ids), the job is run once more while the test is written; those keys are
    left out of the checks, and named in a comment.

    Args:
        store: Where the job is.
        job_id: The job.
        imports: Modules (or ``.py`` files) to import first, to register routines that are
            not installed through entry points.

    Raises:
        JobNotFoundError: No such job.
        JobStateError: The job has not completed.
        AssertionError: Run again, the job did not complete.
    """
    from routilux.testing._run import run_flow

    import_routines(*imports)
    record = store.load_job(job_id)
    if record.status != "completed":
        msg = f"job {job_id!r} is {record.status}: only a completed job can become a test"
        raise JobStateError(msg, job_id=job_id, status=record.status, action="testcase")
    flow, job = load_job_state(store, job_id)
    flow_doc = store.load_flow(record.flow_id, record.fingerprint)
    answers = _answers(flow_doc, job)
    options: dict[str, Any] = {}
    slot = record.options.get("entry_slot")
    if isinstance(slot, str):
        options["entry_slot"] = slot
    replay = run_flow(
        flow, record.entry_routine_id, record.entry_params, answers=answers, **options
    )
    flow.shutdown()
    outputs: dict[str, list[tuple[str, Any]]] = {}
    for entry in job.output_log:
        outputs.setdefault(str(entry.get("routine_id")), []).append(
            (str(entry.get("output_type")), entry.get("data"))
        )
    again = {
        rid: [e.get("data") for e in replay.output_log if e.get("routine_id") == rid]
        for rid in outputs
    }
    results = job_results(flow, job)
    volatile = set()
    for rid, items in outputs.items():
        volatile |= _volatile([data for _, data in items], again[rid])
    volatile |= _volatile([d for *_, d in results], [d for *_, d in job_results(flow, replay)])
    return _source(record, flow_doc, answers, outputs, results, sorted(volatile), imports, slot)


def _strip(data: Any, volatile: Sequence[str]) -> Any:
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if k not in volatile}
    return data


def _py(value: Any, indent: int = 4) -> str:
    # A Python literal of plain data; continuation lines indented for a call's arguments.
    text = pprint.pformat(value, width=92 - indent, sort_dicts=False)
    return text.replace("\n", "\n" + " " * (indent + 4))


def _keywords(values: Any) -> str:
    # ``key=value, ...`` when every key is an identifier, else ``**{...}``.
    if not isinstance(values, dict) or not values:
        return ""
    if all(isinstance(k, str) and k.isidentifier() for k in values):
        return "".join(f", {k}={_py(v)}" for k, v in values.items())
    return f", **{_py(values)}"


def _source(
    record: Any,
    flow_doc: dict[str, Any],
    answers: dict[str, list[dict[str, Any]]],
    outputs: dict[str, list[tuple[str, Any]]],
    results: list[tuple[str, str, Any]],
    volatile: Sequence[str],
    imports: Iterable[str],
    slot: Any,
) -> str:
    short = record.job_id.split("-")[0].replace(".", "_")
    when = datetime.fromtimestamp(record.updated_at).strftime("%Y-%m-%d %H:%M")
    lines = [
        '"""',
        f"Replays job {record.job_id} of flow {record.flow_id!r}",
        f"(completed {when}): the same entry data{' and answers' if answers else ''},",
        "the same outputs and results. Written by `routilux testcase`; edit it as you like.",
        '"""',
        "",
        "import json",
        "",
        "from routilux.testing import assert_emitted, assert_outputs, import_routines, run_flow",
        "",
        "",
    ]
    imported = list(imports)
    if imported:
        lines += [f"import_routines({', '.join(repr(m) for m in imported)})", "", ""]
    document = json.dumps(flow_doc, indent=4, ensure_ascii=False)
    lines += ["# The job's flow, as the store keeps it.", f'FLOW = json.loads(r"""{document}""")']
    lines += ["", ""]
    if volatile:
        lines.append(f"# Left out of the checks: they change from run to run ({len(volatile)}).")
    lines.append(f"IGNORE = {tuple(volatile)!r}")
    lines += ["", "", f"def test_job_{short}(routilux_flow):"]
    lines.append('    """The job runs again to completion with the outputs it recorded."""')
    lines.append("    flow = routilux_flow(document=FLOW)")
    lines.append("    job = run_flow(")
    lines.append(
        f"        flow,\n        {record.entry_routine_id!r},\n        {_py(record.entry_params)},"
    )
    if answers:
        lines.append(f"        answers={_py(answers)},")
    if isinstance(slot, str):
        lines.append(f"        entry_slot={slot!r},")
    lines.append("    )")
    for rid, items in outputs.items():
        expected = [(kind, _strip(data, volatile)) for kind, data in items]
        lines.append(
            f"    assert_outputs(\n        job,\n        {rid!r},\n        {_py(expected)},"
        )
        lines.append("        ignore=IGNORE,\n    )")
    for rid, name, data in results:
        lines.append(
            f"    assert_emitted(job, {f'{rid}.{name}'!r}{_keywords(_strip(data, volatile))})"
        )
    return "\n".join(lines) + "\n"
