"""
Flow files: a flow written as the JSON of ``Flow.serialize()``, read and validated.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Callable, Collection, Mapping
from contextlib import suppress
from os import PathLike
from pathlib import Path
from typing import Any

import attrs

from routilux.codec._schemas import (
    ConnectionDoc,
    ErrorHandlerDoc,
    EventDoc,
    FlowDoc,
    RoutineDoc,
    SlotDoc,
)
from routilux.codec._values import format_path
from routilux.engine._flow import Flow
from routilux.exceptions import DeserializationError, RoutineNotFoundError, SlotNotFoundError
from routilux.model._definition import default_entry_slot
from routilux.model._routine import Routine
from routilux.model._slot import TIMEOUT_KEY


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
        DeserializationError: The file is missing, not UTF-8, not JSON, nested too deeply
            to read, not a JSON object, or holds an integer literal too long for Python to
            convert or a string that is not valid Unicode (a lone surrogate escape); the
            message starts with the file name, and ``path`` names the integer or string.
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
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise _error(file, "", "invalid JSON: containers nested too deeply") from None
    except UnicodeEncodeError:
        # A "\ud800" escape is JSON, but half a UTF-16 pair is no text a store can keep.
        found = _first(data, _not_unicode)
        path, value = found if found is not None else ("", "")
        reason = f"{value!r} is not valid Unicode (a lone surrogate escape)"
        raise _error(file, path, reason) from None
    return data


def _not_unicode(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first(data: Any, match: Callable[[Any], bool]) -> tuple[str, Any] | None:
    # The path and the first value or key of ``data`` (in document order) that ``match``
    # accepts, or None; without recursion, as ``data`` may be nested deeply.
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if match(value):
            return path, value
        items: list[tuple[Any, str]] = []
        if isinstance(value, dict):
            for key, item in value.items():
                where = format_path(path, [str(key)])
                if match(key):
                    return where, key
                items.append((item, where))
        elif isinstance(value, list):
            items = [(item, format_path(path, [i])) for i, item in enumerate(value)]
        stack.extend(reversed(items))
    return None


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
        data = json.loads(text, parse_int=parse_int)
    except (ValueError, RecursionError) as exc:
        return _error(file, "", f"invalid JSON: {exc}")
    found = _first(data, lambda value: isinstance(value, _Digits))
    if found is None:
        return _error(file, "", "invalid JSON: a number cannot be read")
    path, digits = found
    reason = f"an integer literal of {digits.count} digits is too long (at most {limit} digits)"
    return _error(file, path, reason)


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

    A flow file is stricter than a document given to ``Flow.deserialize``: a key the format
    does not define (``conections``, ``confg``, ``param_maping``), and a config key the
    routine's constructor does not set when it sets any (see :attr:`Routine.open_config
    <routilux.Routine.open_config>`), is refused with its path and the closest known key.

    Raises:
        DeserializationError: As :func:`load_flow_file`.

    .. versionchanged:: 0.10
       Unknown keys and config keys are refused.
    """
    _check_keys(data, file)
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
    _check_config_keys(data, flow, file)
    return flow


def _names(cls: type) -> frozenset[str]:
    return frozenset(field.name for field in attrs.fields(cls))


# The keys each part of a flow document may have: the fields of the document schemas.
_TOP_KEYS = _names(FlowDoc) | {"format", "version"}
_ROUTINE_KEYS = _names(RoutineDoc)
_CONNECTION_KEYS = _names(ConnectionDoc)
_ERROR_HANDLER_KEYS = _names(ErrorHandlerDoc)
_SLOT_KEYS = _names(SlotDoc)
_EVENT_KEYS = _names(EventDoc)


def _unknown(
    file: str, path: str, key: str, known: Collection[str], what: str = "key", of: str = ""
) -> None:
    # Refuse ``key`` at ``path``, suggesting the closest known key.
    close = difflib.get_close_matches(key, sorted(known), n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
    else:
        hint = f"expected one of: {', '.join(sorted(known)) or 'none'}"
    raise _error(file, path, f"unknown {what} {key!r}{of} ({hint})")


def _check_object(value: Any, path: str, known: frozenset[str], file: str) -> None:
    # Only the keys: a value of the wrong type is the loader's to report.
    if isinstance(value, dict):
        for key in value:
            if key not in known:
                _unknown(file, format_path(path, [str(key)]), str(key), known)


def _check_list(value: Any, path: str, known: frozenset[str], file: str) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_object(item, format_path(path, [i]), known, file)


def _check_keys(data: Mapping[str, Any], file: str) -> None:
    # Every key of the document's own structure must be one the format defines.
    _check_object(dict(data), "", _TOP_KEYS, file)
    _check_object(data.get("error_handler"), "error_handler", _ERROR_HANDLER_KEYS, file)
    routines = data.get("routines")
    if isinstance(routines, dict):
        for rid, spec in routines.items():
            where = format_path("routines", [str(rid)])
            _check_object(spec, where, _ROUTINE_KEYS, file)
            if isinstance(spec, dict):
                eh_path = format_path(where, ["error_handler"])
                _check_object(spec.get("error_handler"), eh_path, _ERROR_HANDLER_KEYS, file)
                _check_list(spec.get("slots"), format_path(where, ["slots"]), _SLOT_KEYS, file)
                _check_list(spec.get("events"), format_path(where, ["events"]), _EVENT_KEYS, file)
    _check_list(data.get("connections"), "connections", _CONNECTION_KEYS, file)


def _at(path: str, *parts: str | int) -> str:
    # ``path`` followed by ``parts``, outermost first.
    return format_path(path, list(reversed(parts)))


def _config_keys(routine: Routine) -> frozenset[str] | None:
    # The config keys a routine of this class takes, or None for any: those its constructor
    # sets (and its serialize_config hook writes) and ``slot_timeout``, unless it sets none
    # or the class says its config is open.
    cls = type(routine)
    if cls.open_config:
        return None
    try:
        fresh = cls()  # the loader has just built one, so this is expected to work
    except Exception:  # noqa: BLE001  # then the keys cannot be known: take any
        return None
    keys = set(fresh._config)
    if not keys:
        return None
    hook = getattr(fresh, "serialize_config", None)
    if callable(hook):
        with suppress(Exception):  # its errors are for serialize() to report
            keys.update(hook())
    keys.add(TIMEOUT_KEY)  # every routine takes the default timeout of its slots
    return frozenset(keys)


def _check_config_keys(data: Mapping[str, Any], flow: Flow, file: str) -> None:
    # The config keys of each routine must be keys its class takes.
    routines = data.get("routines")
    for rid, spec in routines.items() if isinstance(routines, dict) else ():
        config = spec.get("config") if isinstance(spec, dict) else None
        routine = flow.routines.get(rid)
        if not isinstance(config, dict) or not config or routine is None:
            continue
        if len(config) == 1 and "$callable" in config:
            continue  # a marker, not keys: the loader has dealt with it
        if len(config) == 1 and isinstance(config.get("$dict"), dict):
            config = config["$dict"]  # a config written escaped, as serialize() may
        known = _config_keys(routine)
        if known is None:
            continue
        for key in config:
            if key not in known:
                where = _at("routines", str(rid), "config", str(key))
                _unknown(file, where, str(key), known, "config key", f" of {spec.get('type')}")


def entry_slot(flow: Flow, routine_id: str) -> str | None:
    """
    Return the slot a job entering at ``routine_id`` is delivered to: ``trigger``, else
    ``input``, else the routine's only slot; ``None`` when there is no such slot.
    """
    routine = flow.routines.get(routine_id)
    return default_entry_slot(routine) if routine is not None else None


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
    it, else the flow's single entry candidate. ``entry`` is a routine id when the flow has
    a routine of that id, else ``ID.SLOT`` split at its last dot, so a routine id may
    contain dots (``text.clip``, ``text.clip.input``).

    Raises:
        RoutineNotFoundError: ``entry`` is not in the flow, or none was given and the flow
            has no single candidate.
        SlotNotFoundError: The entry routine has no such slot, or no slot to enter by.

    .. versionchanged:: 0.10
       ``ID.SLOT`` is split at the last dot, after the whole of ``entry`` is tried as an id.
    """
    if entry is not None:
        if entry in flow.routines:
            rid, slot = entry, ""
        else:
            rid, _, slot = entry.rpartition(".")
            if rid not in flow.routines:
                known = ", ".join(repr(r) for r in flow.routines) or "none"
                msg = (
                    f"entry routine {entry!r} not found in flow {flow.flow_id!r} "
                    f"(routines: {known})"
                )
                raise RoutineNotFoundError(msg, name=entry)
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
