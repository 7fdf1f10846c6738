"""
Slots as documents (``routilux.slot``), with their handlers and merge strategies by name.

A handler that is a method of the slot's routine is written as the method's name; any
other handler or merge strategy callable by its registered name.
"""

from __future__ import annotations

import types
from typing import Any

from routilux.codec._config import resolve_callable
from routilux.codec._converter import check_header, header, structure
from routilux.codec._schemas import SlotDoc
from routilux.codec._values import show, subpath
from routilux.exceptions import ConfigurationError, DeserializationError, SerializationError
from routilux.model._routine import Routine
from routilux.model._slot import MergeStrategy, Slot, check_timeout
from routilux.names._callables import callable_name


__all__ = [
    "dump_slot",
    "handler_doc",
    "handler_from_doc",
    "load_slot",
    "load_slot_into",
    "merge_doc",
    "merge_from_doc",
    "timeout_from_doc",
]

_FORMAT = "routilux.slot"


def handler_doc(routine: Routine, slot: Slot, path: str) -> dict[str, str] | None:
    """
    Return the handler of ``slot`` (a slot of ``routine``, at ``path``) as document data:
    ``{"method": name}`` for a method of the routine, ``{"callable": name}`` otherwise.

    Raises:
        SerializationError: The handler has no registered name.
    """
    handler = slot.handler
    if handler is None:
        return None
    if isinstance(handler, types.MethodType) and handler.__self__ is routine:
        name = handler.__func__.__name__
        if _find_method(routine, name) is handler.__func__:
            return {"method": name}
    try:
        return {"callable": callable_name(handler)}
    except SerializationError as exc:
        msg = f"cannot serialize the handler of {path}: {exc}"
        raise SerializationError(msg, path=subpath(path, "handler")) from None


def _find_method(routine: Routine, name: str) -> Any:
    # A plain function defined by the routine's class (not by Routine itself), found
    # without running descriptors, properties or __getattr__.
    if not name or name.startswith("__"):
        return None
    for klass in type(routine).__mro__:
        if klass is Routine or klass is object:
            return None
        found = klass.__dict__.get(name)
        if found is not None:
            return found if isinstance(found, types.FunctionType) else None
    return None


def merge_doc(slot: Slot, path: str) -> Any:
    """
    Return the merge strategy of ``slot`` (at ``path``) as document data: the strategy's
    name, or ``{"callable": name}``.

    Raises:
        SerializationError: A callable strategy has no registered name.
    """
    strategy = slot.merge_strategy
    if isinstance(strategy, str):
        return str.__str__(strategy)
    try:
        return {"callable": callable_name(strategy)}
    except SerializationError as exc:
        msg = f"cannot serialize the merge strategy of {path}: {exc}"
        raise SerializationError(msg, path=subpath(path, "merge_strategy")) from None


def handler_from_doc(routine: Routine | None, doc: dict[str, Any] | None, path: str) -> Any:
    """
    Return the handler a slot document part names (at ``path``): a method of ``routine``
    bound to it, or a registered callable. Nothing is imported or called.

    Raises:
        DeserializationError: The part is malformed, or names an unknown method (or any
            method when there is no routine) or callable.
    """
    if doc is None:
        return None
    if routine is not None and len(doc) == 1 and type(doc.get("method")) is str:
        name = doc["method"]
        func = _find_method(routine, name)
        if func is None:
            msg = f"{type(routine).__qualname__} has no handler method {name!r}"
            raise DeserializationError(msg, path=subpath(path, "method"))
        return types.MethodType(func, routine)
    if len(doc) == 1 and "callable" in doc:
        return resolve_callable(doc["callable"], subpath(path, "callable"))
    if routine is None:
        msg = 'a slot without a routine takes only {"callable": name} as its handler'
    else:
        msg = f'expected {{"method": name}} or {{"callable": name}}, got {show(doc, 200)}'
    raise DeserializationError(msg, path=path)


def merge_from_doc(value: Any, path: str) -> MergeStrategy:
    """
    Return the merge strategy a slot document part names (at ``path``).

    Raises:
        DeserializationError: The value is malformed or names an unknown callable.
    """
    if type(value) is str:
        return value
    if type(value) is dict and len(value) == 1 and "callable" in value:
        strategy: MergeStrategy = resolve_callable(value["callable"], subpath(path, "callable"))
        return strategy
    msg = f'expected a strategy name or {{"callable": name}}, got {show(value, 200)}'
    raise DeserializationError(msg, path=path)


def dump_slot(slot: Slot) -> dict[str, Any]:
    """
    Return a :class:`~routilux.Slot` as a ``routilux.slot`` document: name, merge strategy
    and handler (a method name of its routine, or a registered callable name).

    Raises:
        SerializationError: The handler or merge strategy has no registered name.
    """
    where = slot.name
    handler: dict[str, str] | None = None
    if slot.handler is not None:
        if slot.routine is not None:
            handler = handler_doc(slot.routine, slot, where)
        else:
            try:
                handler = {"callable": callable_name(slot.handler)}
            except SerializationError as exc:
                msg = f"cannot serialize the handler of slot {where!r}: {exc}"
                raise SerializationError(msg, path="handler") from None
    doc: dict[str, Any] = {
        **header(_FORMAT),
        "name": slot.name,
        "merge_strategy": merge_doc(slot, where),
        "handler": handler,
    }
    if slot.timeout is not None:
        doc["timeout"] = slot.timeout
    return doc


def timeout_from_doc(value: float | None, path: str) -> float | None:
    """
    Return a slot document's timeout (at ``path``), checked.

    Raises:
        DeserializationError: It is not a number of seconds > 0.
    """
    try:
        return check_timeout(value, "a slot's timeout")
    except ConfigurationError as exc:
        raise DeserializationError(str(exc), path=path) from None


def _read_slot(data: Any, routine: Routine | None) -> tuple[str, MergeStrategy, Any, float | None]:
    # The name, merge strategy, handler and timeout of a slot document; a method handler
    # is bound to ``routine``.
    check_header(data, _FORMAT)
    body = {k: v for k, v in data.items() if k not in ("format", "version")}
    doc = structure(body, SlotDoc, "")
    strategy = merge_from_doc(doc.merge_strategy, "merge_strategy")
    handler = handler_from_doc(routine, doc.handler, "handler")
    return doc.name, strategy, handler, timeout_from_doc(doc.timeout, "timeout")


def load_slot(data: Any) -> Slot:
    """
    Return a new slot, without a routine, made from a ``routilux.slot`` document; its
    handler must be a registered callable. Nothing the document names is imported;
    ``data`` is not changed.

    Raises:
        DeserializationError: The document is malformed; the message gives the path.

    .. versionadded:: 0.10
    """
    name, strategy, handler, timeout = _read_slot(data, None)
    return Slot(name, None, handler, strategy, timeout=timeout)


def load_slot_into(slot: Slot, data: Any) -> None:
    """
    Fill ``slot`` from a ``routilux.slot`` document (a method handler needs the slot's
    routine). Nothing the document names is imported; ``data`` is not changed.

    Raises:
        DeserializationError: The document is malformed; the message gives the path.
    """
    name, strategy, handler, timeout = _read_slot(data, slot.routine)
    slot.name = name
    slot.merge_strategy = strategy
    slot.handler = handler
    slot.timeout = timeout
