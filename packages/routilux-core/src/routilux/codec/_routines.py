"""
Routines (``routilux.routine``) and events (``routilux.event``) as documents.

A routine is written as its registered type name, id, config, error handler, slots and
events; it is loaded by creating ``cls()`` from the routine registry and restoring those.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from routilux.codec._config import dump_config, load_config
from routilux.codec._converter import check_header, header, structure
from routilux.codec._error_handlers import build_error_handler, error_handler_doc
from routilux.codec._schemas import EventDoc, RoutineDoc
from routilux.codec._slots import (
    handler_doc,
    handler_from_doc,
    merge_doc,
    merge_from_doc,
    timeout_from_doc,
)
from routilux.codec._values import format_path, show, subpath
from routilux.exceptions import (
    DeserializationError,
    RegistryError,
    SerializationError,
    UnknownRoutineTypeError,
)
from routilux.model._event import Event
from routilux.model._routine import Routine
from routilux.names._registry import module_level_name
from routilux.names._routines import get_routine_class, register_routine, routine_type_name


__all__ = [
    "apply_routine_doc",
    "dump_event",
    "dump_routine",
    "load_event",
    "load_event_into",
    "load_routine",
    "load_routine_into",
    "new_routine",
    "routine_doc",
]

_ROUTINE_FORMAT = "routilux.routine"
_EVENT_FORMAT = "routilux.event"


@functools.lru_cache(maxsize=512)
def _required_arguments(cls: type[Routine]) -> tuple[str, ...]:
    # The constructor parameters of a routine class that have no default.
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return ()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind in (*kinds, inspect.Parameter.KEYWORD_ONLY)
    )


def _type_name(routine: Routine, path: str) -> str:
    # The registered type name of the routine's class; a module-level class gets its class
    # name the first time this process serializes it, as a module-level function does.
    # Another process loads it once the class's module registers it, or is imported and
    # serializes it.
    cls = type(routine)
    name = routine_type_name(cls)
    if name is None and module_level_name(cls) is not None:
        try:
            register_routine(cls)
        except RegistryError as exc:  # another class already has that name
            msg = (
                f"cannot serialize {path or 'the routine'} {routine!r}: {exc}; register "
                "it under a name of its own with routilux.registry.register_routine"
            )
            raise SerializationError(msg, path=subpath(path, "type")) from None
        name = routine_type_name(cls)
    if name is None:
        msg = (
            f"cannot serialize {path or 'the routine'} {routine!r}: its class "
            f"{cls.__module__}.{cls.__qualname__} is not registered; register it with "
            "routilux.registry.register_routine"
        )
        raise SerializationError(msg, path=subpath(path, "type"))
    required = _required_arguments(cls)  # type: ignore[arg-type]  # classes hash by identity
    if required:
        msg = (
            f"cannot serialize {path or 'the routine'} {routine!r}: loading rebuilds it as "
            f"{name}() with no arguments, and its class requires {', '.join(required)} "
            "(give them defaults and keep settings in set_config)"
        )
        raise SerializationError(msg, path=subpath(path, "type"))
    return name


def _config_of(routine: Routine, path: str) -> Any:
    # The routine's config as its serialize_config hook gives it, or as it is.
    hook = getattr(routine, "serialize_config", None)
    if not callable(hook):
        return routine.config()
    try:
        return hook()
    except SerializationError as exc:
        if not path:
            raise
        where = format_path(path, [exc.path] if exc.path else [])
        msg = f"cannot serialize {where}: {exc}"
        raise SerializationError(msg, path=where) from exc


def routine_doc(routine: Routine, path: str, with_id: bool) -> dict[str, Any]:
    """
    Return ``routine`` (found at ``path``) as document data, with its id when ``with_id``.

    Raises:
        SerializationError: The class is not registered, or a handler, merge strategy or
            config value has no registered name; the message gives the path.
    """
    doc: dict[str, Any] = {"type": _type_name(routine, path)}
    if with_id:
        doc["id"] = routine.get_id()
    doc["config"] = dump_config(_config_of(routine, path), subpath(path, "config"))
    eh = routine.get_error_handler()
    doc["error_handler"] = (
        error_handler_doc(eh, subpath(path, "error_handler")) if eh is not None else None
    )
    slots = []
    for slot_name, slot in routine.get_slots().items():
        where = subpath(subpath(path, "slots"), slot_name)
        slot_doc = {
            "name": slot_name,
            "merge_strategy": merge_doc(slot, where),
            "handler": handler_doc(routine, slot, where),
        }
        if slot.timeout is not None:
            slot_doc["timeout"] = slot.timeout
        slots.append(slot_doc)
    doc["slots"] = slots
    doc["events"] = [
        {"name": event_name, "output_params": [str(p) for p in event.output_params]}
        for event_name, event in routine.get_events().items()
    ]
    return doc


def dump_routine(routine: Routine) -> dict[str, Any]:
    """
    Return a :class:`~routilux.Routine` as a ``routilux.routine`` document: registered type
    name, id, config, error handler, slots and events.

    Raises:
        SerializationError: The class is not registered, or a handler, merge strategy or
            config value has no registered name; the message gives the path.
    """
    return {**header(_ROUTINE_FORMAT), **routine_doc(routine, "", with_id=True)}


def apply_routine_doc(routine: Routine, doc: RoutineDoc, path: str) -> None:
    """
    Restore ``routine``'s config, error handler, slots and events from its structured
    document part (found at ``path``). Everything is resolved before the routine changes.
    Slots and events the constructor did not declare are declared again.

    Raises:
        DeserializationError: The part names an unknown method, callable or exception
            class, declares a slot or event twice, or its config is refused by the
            routine's ``deserialize_config``.
    """
    config = load_config(doc.config, subpath(path, "config"))
    if type(config) is not dict:  # a {"$callable": name} marker at the top
        msg = f"a routine config must be an object, got {show(doc.config, 200)}"
        raise DeserializationError(msg, path=subpath(path, "config"))
    eh = (
        build_error_handler(doc.error_handler, subpath(path, "error_handler"))
        if doc.error_handler is not None
        else None
    )
    slots = []
    seen: set[str] = set()
    for i, slot_doc in enumerate(doc.slots):
        where = subpath(subpath(path, "slots"), i)
        if slot_doc.name in seen:
            msg = f"slot {slot_doc.name!r} is declared twice"
            raise DeserializationError(msg, path=subpath(where, "name"))
        seen.add(slot_doc.name)
        merge = merge_from_doc(slot_doc.merge_strategy, subpath(where, "merge_strategy"))
        handler = handler_from_doc(routine, slot_doc.handler, subpath(where, "handler"))
        timeout = timeout_from_doc(slot_doc.timeout, subpath(where, "timeout"))
        slots.append((slot_doc.name, handler, merge, timeout))
    seen.clear()
    for i, event_doc in enumerate(doc.events):
        if event_doc.name in seen:
            msg = f"event {event_doc.name!r} is declared twice"
            raise DeserializationError(
                msg, path=subpath(subpath(subpath(path, "events"), i), "name")
            )
        seen.add(event_doc.name)
    hook = getattr(routine, "deserialize_config", None)
    if callable(hook):
        # The routine's own check of its config (it must not run anything it names).
        try:
            hook(config)
        except DeserializationError as exc:
            if not path:
                raise
            where = format_path(path, [exc.path] if exc.path else ["config"])
            raise DeserializationError(exc.reason, path=where) from exc
        except (ValueError, TypeError, LookupError) as exc:
            raise DeserializationError(str(exc), path=subpath(path, "config")) from exc
    else:
        # Merged into what the constructor set: a document that sets some keys keeps the
        # routine's defaults for the others (a full document lists every key anyway).
        routine.merge_config(config)
    routine.set_error_handler(eh)
    for name, handler, merge, timeout in slots:
        slot = routine.get_slot(name)
        if slot is None:
            routine.define_slot(name, handler, merge, timeout=timeout)
        else:
            if timeout is not None:
                slot.timeout = timeout
            if slot.merge_strategy != merge:
                slot.merge_strategy = merge
            if handler != slot.handler:  # a bound method equals another of the same method
                slot.handler = handler  # re-analyses the signature: only when it changed
    for event_doc in doc.events:
        event = routine.get_event(event_doc.name)
        if event is None:
            routine.define_event(event_doc.name, list(event_doc.output_params))
        else:
            event.output_params = list(event_doc.output_params)


def new_routine(type_name: str, path: str) -> Routine:
    """
    Return a new routine of the class registered under ``type_name``, made with no
    arguments (the routine found at ``path`` of its document).

    Raises:
        DeserializationError: No class is registered or declared under the name, or its
            constructor fails.
    """
    try:
        cls = get_routine_class(type_name)
    except UnknownRoutineTypeError as exc:
        raise DeserializationError(str(exc), path=subpath(path, "type")) from None
    try:
        return cls()
    except Exception as exc:
        msg = f"cannot create a {type_name!r} routine with no arguments: {exc!r}"
        raise DeserializationError(msg, path=subpath(path, "type")) from exc


def _routine_doc_of(data: Any) -> RoutineDoc:
    check_header(data, _ROUTINE_FORMAT)
    return structure(data, RoutineDoc, "")


def load_routine(data: Any) -> Routine:
    """
    Return a new routine made from a :func:`dump_routine` document: ``cls()`` of the class
    its type name is registered under, with the document's id, config (merged into the
    constructor's), error handler, slots and events. Nothing the document names is
    imported, except through the ``routilux.routines`` entry points.

    Raises:
        DeserializationError: ``data`` is malformed, or names an unknown routine type,
            method, callable or exception class.

    .. versionadded:: 0.10
    """
    doc = _routine_doc_of(data)
    routine = new_routine(doc.type, "")
    apply_routine_doc(routine, doc, "")
    if doc.id is not None:
        routine.set_id(doc.id)
    return routine


def load_routine_into(routine: Routine, data: Any) -> None:
    """
    Restore a routine's id, config, error handler, slots and events from a
    :func:`dump_routine` document. The document's config is merged into the routine's
    (keys it does not set keep their values). Slots and events the constructor did not
    declare are declared again; handlers are rebound by method name or registered callable
    name.

    Raises:
        DeserializationError: ``data`` is malformed, is of another routine type, or
            names an unknown method, callable or exception class.

    .. versionchanged:: 0.10
       The config is merged into the routine's instead of replacing it.
    """
    doc = _routine_doc_of(data)
    own = routine_type_name(type(routine))
    if own is not None and own != doc.type:
        msg = f"the document is a {show(doc.type, 100)} routine, not a {own!r}"
        raise DeserializationError(msg, path="type")
    apply_routine_doc(routine, doc, "")
    if doc.id is not None:
        routine.set_id(doc.id)


def dump_event(event: Event) -> dict[str, Any]:
    """
    Return an :class:`~routilux.Event` as a ``routilux.event`` document: name and
    ``output_params`` (connections belong to the flow).
    """
    return {
        **header(_EVENT_FORMAT),
        "name": event.name,
        "output_params": [str(p) for p in event.output_params],
    }


def load_event(data: Any) -> Event:
    """
    Return a new event, without a routine, made from a ``routilux.event`` document;
    ``data`` is not changed.

    Raises:
        DeserializationError: The document is malformed; the message gives the path.

    .. versionadded:: 0.10
    """
    check_header(data, _EVENT_FORMAT)
    body = {k: v for k, v in data.items() if k not in ("format", "version")}
    doc = structure(body, EventDoc, "")
    return Event(doc.name, None, list(doc.output_params))


def load_event_into(event: Event, data: Any) -> None:
    """
    Fill ``event`` from a ``routilux.event`` document; ``data`` is not changed.

    Raises:
        DeserializationError: The document is malformed; the message gives the path.
    """
    fresh = load_event(data)
    event.name = fresh.name
    event.output_params = fresh.output_params
