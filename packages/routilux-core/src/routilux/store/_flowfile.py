"""
Flow files: a flow written as the JSON of ``Flow.serialize()``, read and validated.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from .._flow import Flow
from .._serialization_json import format_path
from ..exceptions import DeserializationError, RoutineNotFoundError, SlotNotFoundError


__all__ = [
    "entry_candidates",
    "entry_slot",
    "flow_from_data",
    "load_flow_file",
    "pick_entry",
    "read_flow_file",
]


def _error(file: str, path: str, reason: str) -> DeserializationError:
    # The message names the file first; ``path`` and ``reason`` stay separate attributes.
    exc = DeserializationError(reason, path=path)
    exc.args = (f"{file}: {path}: {reason}" if path else f"{file}: {reason}",)
    return exc


def read_flow_file(path: str | PathLike[str]) -> dict[str, Any]:
    """
    Read a flow file as data, without building the flow.

    Raises:
        DeserializationError: The file is missing, not UTF-8, not JSON (containers nested
            too deeply to read are not; an integer literal too long for Python to convert
            is named by its path), or not a JSON object; the message starts with the file
            name.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _error(file, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(file, "", f"cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise _error(file, "", reason) from None
    except RecursionError:
        # The standard library's reader recurses once per level of nesting.
        raise _error(file, "", "invalid JSON: containers nested too deeply") from None
    except ValueError:
        # An integer literal longer than Python converts (sys.get_int_max_str_digits()).
        raise _huge_integer(file, text) from None
    if not isinstance(data, dict):
        reason = f"expected a JSON object (a serialized flow), got {type(data).__name__}"
        raise _error(file, "", reason)
    return data


class _Digits:
    # An integer literal too long to convert, kept in its place to find its path.
    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count


def _huge_integer(file: str, text: str) -> DeserializationError:
    # Read the file again, leaving over-long integer literals unconverted, and name the path
    # of the first one.
    get_limit = getattr(sys, "get_int_max_str_digits", None)
    limit: int = get_limit() if get_limit is not None else 0

    def parse_int(literal: str) -> Any:
        digits = len(literal.lstrip("-"))
        return _Digits(digits) if limit and digits > limit else int(literal)

    try:
        stack: list[tuple[Any, str]] = [(json.loads(text, parse_int=parse_int), "")]
    except (ValueError, RecursionError) as exc:
        return _error(file, "", f"invalid JSON: {exc}")
    while stack:
        value, path = stack.pop()
        if isinstance(value, _Digits):
            reason = (
                f"an integer literal of {value.count} digits is too long (at most {limit} digits)"
            )
            return _error(file, path, reason)
        if isinstance(value, dict):
            items: list[tuple[Any, str]] = [(v, format_path(path, [k])) for k, v in value.items()]
        elif isinstance(value, list):
            items = [(v, format_path(path, [i])) for i, v in enumerate(value)]
        else:
            continue
        stack.extend(reversed(items))
    return _error(file, "", "invalid JSON: a number cannot be read")


def load_flow_file(path: str | PathLike[str]) -> Flow:
    """
    Read and validate a flow file and return the Flow it describes.

    Routine types resolve only through the routine registry (the ``routilux.routines``
    entry points and explicit registrations); nothing the file names is imported.

    Raises:
        DeserializationError: The file is malformed. The message gives the file, the path
            of the bad field (also in ``.path``, such as ``routines.clip.config``) and what
            was expected.
    """
    data = read_flow_file(path)
    return flow_from_data(data, str(path))


def flow_from_data(data: Mapping[str, Any], file: str = "<flow>") -> Flow:
    """
    Build a Flow from flow-file data, naming ``file`` in errors.

    Raises:
        DeserializationError: As :func:`load_flow_file`.
    """
    flow = Flow()
    try:
        flow.deserialize(dict(data))
    except DeserializationError as exc:
        raise _error(file, exc.path, exc.reason) from None
    except (LookupError, ValueError, TypeError) as exc:
        # Registry and configuration errors raised while routines are rebuilt.
        raise _error(file, "", str(exc)) from None
    if not flow.flow_id:
        # The document layer takes any string; a job store needs a name to file the flow by.
        raise _error(file, "flow_id", f"expected a non-empty string, got {flow.flow_id!r}")
    return flow


def entry_slot(flow: Flow, routine_id: str) -> str | None:
    """
    Return the slot a job entering at ``routine_id`` is delivered to: ``trigger``, else
    ``input``, else the routine's only slot; ``None`` when there is no such slot.
    """
    routine = flow.routines.get(routine_id)
    if routine is None:
        return None
    slots = list(routine._slots)
    for name in ("trigger", "input"):
        if name in slots:
            return name
    return slots[0] if len(slots) == 1 else None


def entry_candidates(flow: Flow) -> list[str]:
    """
    Return the ids of the routines that can start a job of ``flow``: those that no
    connection targets and that have an entry slot (see :func:`entry_slot`), in order.
    """
    targeted = {c.target_routine_id for c in flow.connections}
    return [
        rid for rid in flow.routines if rid not in targeted and entry_slot(flow, rid) is not None
    ]


def pick_entry(flow: Flow, entry: str | None) -> tuple[str, str]:
    """
    Return the entry routine and slot: ``entry`` (``ID`` or ``ID.SLOT``) if ``flow`` has
    it, else the flow's single entry candidate.

    Raises:
        RoutineNotFoundError: ``entry`` is not in the flow, or none was given and the flow
            has no single candidate.
        SlotNotFoundError: The entry routine has no such slot, or no slot to enter by.
    """
    if entry is not None:
        rid, _, slot = entry.partition(".")
        if rid not in flow.routines:
            if entry in flow.routines:
                rid, slot = entry, ""
            else:
                known = ", ".join(repr(r) for r in flow.routines) or "none"
                msg = (
                    f"entry routine {rid!r} not found in flow {flow.flow_id!r} (routines: {known})"
                )
                raise RoutineNotFoundError(msg, name=rid)
        slot = slot or (entry_slot(flow, rid) or "")
        if not slot or flow.routines[rid].get_slot(slot) is None:
            known = ", ".join(repr(s) for s in flow.routines[rid]._slots) or "none"
            what = f"no slot {slot!r}" if slot else "no entry slot"
            msg = f"entry routine {rid!r} has {what} (slots: {known}); use --entry ID.SLOT"
            raise SlotNotFoundError(msg, name=slot)
        return rid, slot
    candidates = entry_candidates(flow)
    if len(candidates) == 1:
        rid = candidates[0]
        return rid, entry_slot(flow, rid) or "trigger"
    listed = ", ".join(repr(c) for c in candidates) or "none"
    msg = (
        f"flow {flow.flow_id!r} has {len(candidates)} possible entry routines ({listed}); "
        "name one with --entry"
    )
    raise RoutineNotFoundError(msg, name="")
