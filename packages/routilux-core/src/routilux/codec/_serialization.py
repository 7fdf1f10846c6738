"""
Flows, routines and jobs as plain JSON-able data, and safe loading of that data.

Every document is a dict with a format name and a version, such as
``{"format": "routilux.flow", "version": 1, ...}``. Loading is safe by construction:
routine types resolve only through :mod:`routilux.registry`, callables only through the
callable registry of this module, exception classes only through its exception registry.
Nothing a document names is imported, evaluated or called while it is loaded, and a
malformed document raises :class:`~routilux.exceptions.DeserializationError` whose
``path`` names the bad field. Loading never changes the caller's dict.

The document schemas are attrs classes structured by a cattrs converter
(:func:`make_converter`); the big lists of a job (history, logs) are read and written
by hand because that is several times faster.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import json
import math
import sys
import threading
import types
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import chain, compress, repeat
from operator import is_, itemgetter
from typing import TYPE_CHECKING, Any, NewType, TypeVar, overload

import attrs
import cattrs
from cattrs.cols import list_structure_factory, mapping_structure_factory
from cattrs.errors import AttributeValidationNote, BaseValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn

from routilux import exceptions as _exc
from routilux.codec._values import (
    _MAX_INT_BITS,
    MAX_DEPTH,
    BadValue,
    check_strict,
    dump_value,
    format_path,
    load_object,
    load_value,
    not_json,
    sanitize,
)
from routilux.exceptions import DeserializationError, RegistryError, SerializationError
from routilux.model import _lifecycle as lifecycle
from routilux.model._history import Booking, ExecutionHistory, _as_record
from routilux.model._job_state import ErrorRecord


if TYPE_CHECKING:
    from routilux.model._connection import Connection
    from routilux.model._definition import FlowDefinition as Flow
    from routilux.model._error_handler import ErrorHandler
    from routilux.model._event import Event
    from routilux.model._job_state import ExecutionRecord, JobState
    from routilux.model._routine import Routine
    from routilux.model._slot import Slot
    from routilux.model._tracker import ExecutionTracker

__all__ = [
    "FLOW_FORMAT",
    "FORMAT_VERSION",
    "JOB_STATE_FORMAT",
    "MAX_DEPTH",
    "callable_name",
    "configure_converter",
    "dump_connection",
    "dump_error_handler",
    "dump_error_record",
    "dump_event",
    "dump_flow",
    "dump_job_state",
    "dump_routine",
    "dump_slot",
    "dump_tracker",
    "dumps_strict",
    "exception_name",
    "get_callable",
    "get_exception",
    "load_connection_into",
    "load_error_handler_into",
    "load_event_into",
    "load_flow_into",
    "load_job_state_into",
    "load_record_into",
    "load_routine_into",
    "load_slot_into",
    "load_tracker_into",
    "make_converter",
    "register_callable",
    "register_exception",
    "unregister_callable",
]

FORMAT_VERSION = 1
"""The document version this module writes and reads."""

FLOW_FORMAT = "routilux.flow"
"""Format name of a serialized :class:`~routilux.Flow`."""

JOB_STATE_FORMAT = "routilux.job_state"
"""Format name of a serialized :class:`~routilux.JobState`."""

_ROUTINE_FORMAT = "routilux.routine"
_SLOT_FORMAT = "routilux.slot"
_EVENT_FORMAT = "routilux.event"
_CONNECTION_FORMAT = "routilux.connection"
_ERROR_HANDLER_FORMAT = "routilux.error_handler"
_TRACKER_FORMAT = "routilux.execution_tracker"
_RECORD_FORMAT = "routilux.execution_record"

_MAX_WORKERS = 10_000
_MAX_RETRIES = 1_000_000
_MAX_SECONDS = 10.0**9

_F = TypeVar("_F")

# -- the callable registry -------------------------------------------------------------

_lock = threading.RLock()
_callables: dict[str, Any] = {}
_callable_names: dict[Any, str] = {}
_callable_ids: dict[int, tuple[Any, str]] = {}


def _show(value: Any, limit: int) -> str:
    # repr() for error messages that never raises (a hostile document may hold values whose
    # repr fails: a 5,000-digit int, lists nested past the recursion limit) and stays short.
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any failure of repr just gets a neutral description
        text = f"<unprintable {type(value).__name__}>"
    return text[:limit]


def _describe(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if module and qualname:
        return f"{module}.{qualname}"
    return repr(obj)


def _known_name(obj: Any) -> str | None:
    try:
        name = _callable_names.get(obj)
    except TypeError:  # unhashable callable object: fall back to identity
        name = None
    if name is None:
        entry = _callable_ids.get(id(obj))
        if entry is not None and entry[0] is obj:
            name = entry[1]
    return name


def _add_callable(obj: Any, name: str) -> None:
    with _lock:
        existing = _callables.get(name)
        if existing is not None and existing is not obj:
            try:
                same = bool(existing == obj)
            except Exception:  # noqa: BLE001 - an odd __eq__ only means "not the same"
                same = False
            if not same:
                msg = (
                    f"callable name {name!r} is taken by {_describe(existing)}; "
                    f"cannot register {_describe(obj)} under it"
                )
                raise RegistryError(msg)
        _callables[name] = obj
        try:
            _callable_names.setdefault(obj, name)
        except TypeError:
            _callable_ids.setdefault(id(obj), (obj, name))


@overload
def register_callable(func: _F, name: str | None = None) -> _F: ...


@overload
def register_callable(func: None = None, name: str | None = None) -> Callable[[_F], _F]: ...


def register_callable(func: Any = None, name: str | None = None) -> Any:
    """
    Give a callable a stable name so that flows holding it (as a slot handler, a merge
    strategy or a config value) can be written and loaded.

    Use as ``register_callable(func)``, ``register_callable(func, "acme.clean")``,
    ``@register_callable`` or ``@register_callable(name="acme.clean")``. The default name
    is ``module:qualname``. Registering the same callable again is harmless.

    Raises:
        RegistryError: The name is taken by another callable, the name is empty, or a
            default name is asked for a callable that has none (a lambda, a closure).
    """

    def decorate(f: _F) -> _F:
        if not callable(f):
            msg = f"only callables can be registered, got {f!r}"
            raise RegistryError(msg)
        chosen = name if name is not None else _auto_name(f)
        if not isinstance(chosen, str) or not chosen:
            msg = (
                f"{f!r} has no module-level name; pass one: register_callable(func, name=...)"
                if chosen is None
                else f"a callable name must be a non-empty string, got {chosen!r}"
            )
            raise RegistryError(msg)
        _add_callable(f, chosen)
        return f

    if func is None or isinstance(func, str):
        if isinstance(func, str):  # @register_callable("name")
            name = func
        return decorate
    return decorate(func)


def unregister_callable(name: str) -> None:
    """
    Forget the callable registered under ``name`` (mostly for tests).
    """
    with _lock:
        obj = _callables.pop(name, None)
        if obj is None:
            return
        try:
            if _callable_names.get(obj) == name:
                del _callable_names[obj]
        except TypeError:
            entry = _callable_ids.get(id(obj))
            if entry is not None and entry[1] == name:
                del _callable_ids[id(obj)]


def _auto_name(obj: Any) -> str | None:
    # ``module:qualname`` when the object really is reachable under that name; lambdas,
    # closures, local functions, bound methods and instances have no such name.
    if isinstance(obj, types.MethodType):
        return None
    if not (inspect.isfunction(obj) or inspect.isbuiltin(obj) or isinstance(obj, type)):
        return None
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    target: Any = sys.modules.get(module)
    for part in qualname.split("."):
        if target is None:
            return None
        target = inspect.getattr_static(target, part, None)
        if isinstance(target, (staticmethod, classmethod)):
            target = target.__func__
    if target is not obj:
        return None
    return f"{module}:{qualname}"


def callable_name(func: Any) -> str:
    """
    Return the registered name of ``func``; a module-level function (or class) is
    registered as ``module:qualname`` the first time it is asked for.

    Raises:
        SerializationError: ``func`` has no name: a lambda, a closure, a local function,
            a bound method or a callable object that was never registered.
    """
    with _lock:
        name = _known_name(func)
        if name is not None:
            return name
        auto = _auto_name(func)
        if auto is not None:
            _add_callable(func, auto)
            return auto
    kind = "lambda" if getattr(func, "__name__", "") == "<lambda>" else "callable"
    msg = (
        f"cannot serialize the {kind} {func!r}: it has no registered name (lambdas, "
        "closures, local functions and bound methods of other objects cannot be named); "
        "use a module-level function or routilux.serialization.register_callable(func, name=...)"
    )
    raise SerializationError(msg)


def get_callable(name: str) -> Any:
    """
    Return the callable registered under ``name``. Nothing is imported.

    Raises:
        RegistryError: No callable is registered under ``name``.
    """
    with _lock:
        obj = _callables.get(name) if isinstance(name, str) else None
    if obj is None:
        msg = (
            f"no callable is registered under {name!r}; the process that loads must "
            "register it with routilux.serialization.register_callable"
        )
        raise RegistryError(msg)
    return obj


# -- the exception registry ------------------------------------------------------------

_exceptions: dict[str, type[BaseException]] = {}
_exception_names: dict[type[BaseException], str] = {}
_builtin_exceptions_added = False


def _ensure_builtin_exceptions() -> None:
    global _builtin_exceptions_added
    with _lock:
        if _builtin_exceptions_added:
            return
        import builtins

        for attr, value in vars(builtins).items():
            if isinstance(value, type) and issubclass(value, BaseException):
                _exceptions.setdefault(attr, value)
                _exception_names.setdefault(value, attr)
        for attr in _exc.__all__:
            value = getattr(_exc, attr)
            if isinstance(value, type) and issubclass(value, BaseException):
                _exceptions.setdefault(f"routilux.{attr}", value)
                _exception_names.setdefault(value, f"routilux.{attr}")
        _builtin_exceptions_added = True


def register_exception(cls: type[BaseException], name: str | None = None) -> type[BaseException]:
    """
    Give an exception class a stable name for ``ErrorHandler.retryable_exceptions``.

    Built-in exceptions are known by their names (``"ValueError"``) and routilux's own as
    ``"routilux.<Name>"``. The default name of others is ``module:qualname``.

    Raises:
        RegistryError: ``cls`` is not an exception class, or the name is taken by another.
    """
    _ensure_builtin_exceptions()
    candidate: Any = cls
    if not (isinstance(candidate, type) and issubclass(candidate, BaseException)):
        msg = f"only exception classes can be registered, got {cls!r}"
        raise RegistryError(msg)
    chosen = name or _auto_name(cls)
    if not chosen:
        msg = f"{cls!r} has no module-level name; pass one: register_exception(cls, name=...)"
        raise RegistryError(msg)
    with _lock:
        existing = _exceptions.get(chosen)
        if existing is not None and existing is not cls:
            msg = (
                f"exception name {chosen!r} is taken by {_describe(existing)}; "
                f"cannot register {_describe(cls)} under it"
            )
            raise RegistryError(msg)
        _exceptions[chosen] = cls
        _exception_names.setdefault(cls, chosen)
    return cls


def exception_name(cls: type[BaseException]) -> str:
    """
    Return the registered name of an exception class, registering a module-level class
    as ``module:qualname`` the first time.

    Raises:
        SerializationError: The class has no name (it was defined in a function).
    """
    _ensure_builtin_exceptions()
    with _lock:
        name = _exception_names.get(cls)
    if name is not None:
        return name
    if _auto_name(cls) is None:
        msg = (
            f"cannot serialize the exception class {cls!r}: it is not reachable by a "
            "module-level name; register it with routilux.serialization.register_exception"
        )
        raise SerializationError(msg)
    register_exception(cls)
    return _exception_names[cls]


def get_exception(name: str) -> type[BaseException]:
    """
    Return the exception class registered under ``name``. Nothing is imported.

    Raises:
        RegistryError: No exception class is registered under ``name``.
    """
    _ensure_builtin_exceptions()
    with _lock:
        cls = _exceptions.get(name) if isinstance(name, str) else None
    if cls is None:
        msg = (
            f"no exception class is registered under {name!r}; the process that loads "
            "must register it with routilux.serialization.register_exception"
        )
        raise RegistryError(msg)
    return cls


# -- the converter and the document schemas -------------------------------------------

JsonValue = NewType("JsonValue", object)
"""Any JSON value; loaded as a checked deep copy."""

JsonObject = NewType("JsonObject", dict)  # type: ignore[type-arg]  # a NewType of a bare dict
"""A JSON object (a dict with string keys); loaded as a checked deep copy."""


@attrs.frozen
class _ErrorHandlerDoc:
    strategy: str = "stop"
    max_retries: int = 3
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    retry_count: int = 0
    is_critical: bool = False
    retryable_exceptions: list[str] = attrs.Factory(lambda: ["Exception"])


@attrs.frozen
class _SlotDoc:
    name: str
    merge_strategy: JsonValue = JsonValue("override")
    handler: JsonObject | None = None


@attrs.frozen
class _EventDoc:
    name: str
    output_params: list[str] = attrs.Factory(list)


@attrs.frozen
class _RoutineDoc:
    type: str
    id: str | None = None
    config: JsonObject = attrs.Factory(lambda: JsonObject({}))
    error_handler: _ErrorHandlerDoc | None = None
    slots: list[_SlotDoc] = attrs.Factory(list)
    events: list[_EventDoc] = attrs.Factory(list)


@attrs.frozen
class _ConnectionDoc:
    source_routine_id: str
    source_event: str
    target_routine_id: str
    target_slot: str
    param_mapping: dict[str, str] = attrs.Factory(dict)


@attrs.frozen
class _FlowDoc:
    flow_id: str
    routines: dict[str, _RoutineDoc]
    execution_strategy: str = "sequential"
    max_workers: int = 5
    max_async: int = 32
    history_limit: int | None = None
    error_handler: _ErrorHandlerDoc | None = None
    connections: list[_ConnectionDoc] = attrs.Factory(list)


@attrs.frozen
class _JobStateHead:
    flow_id: str
    job_id: str
    status: str
    current_routine_id: str | None = None
    metadata: JsonObject = attrs.Factory(lambda: JsonObject({}))
    checkpoint: JsonObject | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    history_limit: int | None = None
    history_dropped: int = 0
    output_handler_failures: int = 0
    checkpoint_seq: int = 0


@attrs.frozen
class _TrackerDoc:
    flow_id: str = ""
    routine_executions: dict[str, list[JsonObject]] = attrs.Factory(dict)
    event_flow: list[JsonObject] = attrs.Factory(list)
    performance_metrics: JsonObject = attrs.Factory(lambda: JsonObject({}))


def _type_error(expected: str, value: Any) -> TypeError:
    return TypeError(f"expected {expected}, got {value!r}")


def _structure_str(value: Any, _: Any) -> str:
    if type(value) is not str:
        raise _type_error("a string", value)
    return value


def _structure_int(value: Any, _: Any) -> int:
    if type(value) is not int:
        raise _type_error("an integer", value)
    if value.bit_length() > 63:
        msg = f"integer out of range: {value!r}"
        raise ValueError(msg)
    return value


def _structure_float(value: Any, _: Any) -> float:
    if type(value) is not float and type(value) is not int:
        raise _type_error("a number", value)
    number = float(value)
    if not math.isfinite(number):
        msg = f"expected a finite number, got {value!r}"
        raise ValueError(msg)
    return number


def _structure_bool(value: Any, _: Any) -> bool:
    if type(value) is not bool:
        raise _type_error("true or false", value)
    return value


def _structure_datetime(value: Any, _: Any) -> datetime:
    if type(value) is not str:
        raise _type_error("an ISO 8601 timestamp string", value)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        msg = f"expected an ISO 8601 timestamp, got {value!r}"
        raise ValueError(msg) from None


class _NestedPath(Exception):
    # A BadValue raised inside a cattrs hook, carrying its inner path out of cattrs.
    def __init__(self, bad: BadValue) -> None:
        super().__init__(bad.reason)
        self.bad = bad


def _structure_json_value(value: Any, _: Any) -> Any:
    try:
        return load_value(value)
    except BadValue as bad:
        raise _NestedPath(bad) from None


def _structure_json_object(value: Any, _: Any) -> Any:
    try:
        return load_object(value)
    except BadValue as bad:
        raise _NestedPath(bad) from None


def configure_converter(converter: cattrs.Converter) -> None:
    """
    Configure ``converter`` for routilux documents: strict scalars (no ``"5"`` for 5),
    strict lists, ISO timestamps, and checked deep copies of JSON values.
    """
    for cls, hook in (
        (str, _structure_str),
        (int, _structure_int),
        (float, _structure_float),
        (bool, _structure_bool),
        (datetime, _structure_datetime),
        (JsonValue, _structure_json_value),
        (JsonObject, _structure_json_object),
    ):
        converter.register_structure_hook(cls, hook)
    converter.register_unstructure_hook(datetime, datetime.isoformat)
    converter.register_unstructure_hook(JsonValue, lambda v: v)
    converter.register_unstructure_hook(JsonObject, lambda v: v)
    converter.register_structure_hook_factory(_is_list_type, _strict_list_factory)
    converter.register_structure_hook_factory(_is_dict_type, _strict_dict_factory)
    converter.register_structure_hook_factory(attrs.has, _strict_attrs_factory)


def _is_list_type(cl: Any) -> bool:
    return getattr(cl, "__origin__", None) is list


def _is_dict_type(cl: Any) -> bool:
    return getattr(cl, "__origin__", None) is dict


def _checked(
    kind: type, expected: str, inner: Callable[[Any, Any], Any]
) -> Callable[[Any, Any], Any]:
    # A structure hook that refuses anything but ``kind`` before ``inner`` structures it.
    def hook(value: Any, t: Any) -> Any:
        if type(value) is not kind:
            raise _type_error(expected, value)
        return inner(value, t)

    return hook


def _strict_list_factory(cl: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    # cattrs accepts any iterable as a list (a string, a dict); documents must hold lists.
    return _checked(list, "a list", list_structure_factory(cl, converter))


def _strict_dict_factory(cl: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    return _checked(dict, "an object (dict)", mapping_structure_factory(cl, converter))


def _strict_attrs_factory(cl: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    # A document part (an attrs class) must be an object: cattrs would test keys with ``in``
    # on a string or a list and fail with an unrelated message.
    return _checked(dict, "an object (dict)", make_dict_structure_fn(cl, converter))


def make_converter() -> cattrs.Converter:
    """
    Return a new cattrs converter configured by :func:`configure_converter`.
    """
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    configure_converter(converter)
    return converter


_converter_instance: cattrs.Converter | None = None


def _converter() -> cattrs.Converter:
    global _converter_instance
    conv = _converter_instance
    if conv is None:
        with _lock:
            conv = _converter_instance
            if conv is None:
                conv = make_converter()
                _converter_instance = conv
    return conv


def _leaf(exc: BaseException, parts: list[str | int]) -> BaseException:
    # Follow the first failure down a cattrs validation error, collecting the path.
    while isinstance(exc, BaseValidationError) and exc.exceptions:
        exc = exc.exceptions[0]
        for note in getattr(exc, "__notes__", ()):
            if isinstance(note, AttributeValidationNote):
                parts.append(note.name)
            elif isinstance(note, IterableValidationNote):
                parts.append(note.index if isinstance(note.index, int) else str(note.index))
    return exc


def _join(prefix: str, parts: list[str | int]) -> str:
    # ``parts`` outermost first.
    return format_path(prefix, list(reversed(parts)))


def _structure(data: Any, cls: type[_F], path: str) -> _F:
    try:
        return _converter().structure(data, cls)
    except BaseValidationError as exc:
        parts: list[str | int] = []
        leaf = _leaf(exc, parts)
        where = _join(path, parts)
        if isinstance(leaf, _NestedPath):
            where = format_path(where, leaf.bad.parts)
            reason = leaf.bad.reason
        elif isinstance(leaf, KeyError):
            reason = "required field missing"
        else:
            reason = str(leaf) or type(leaf).__name__
        raise DeserializationError(reason, path=where) from None
    except _NestedPath as exc:
        raise DeserializationError(exc.bad.reason, path=format_path(path, exc.bad.parts)) from None


def _sub(path: str, part: str | int) -> str:
    return format_path(path, [part])


def _check_header(data: Any, fmt: str, legacy_type: str | None = None) -> bool:
    """
    Check a document's format and version; return ``True`` for a legacy ``_type`` document.
    """
    if type(data) is not dict:
        msg = f"expected a {fmt!r} document (a dict), got {_show(data, 200)}"
        raise DeserializationError(msg)
    found = data.get("format")
    if found is None:
        if legacy_type is not None and data.get("_type") == legacy_type:
            return True
        if "_type" in data:
            msg = f"unknown document type {_show(data['_type'], 100)}, expected format {fmt!r}"
            raise DeserializationError(msg, path="_type")
        msg = f"missing the format name (expected {fmt!r})"
        raise DeserializationError(msg, path="format")
    if found != fmt:
        msg = f"unknown format {_show(found, 100)}, expected {fmt!r}"
        raise DeserializationError(msg, path="format")
    version = data.get("version")
    if type(version) is not int:
        msg = f"the version must be an integer, got {_show(version, 100)}"
        raise DeserializationError(msg, path="version")
    if version != FORMAT_VERSION:
        msg = (
            f"unsupported version {version!r} of {fmt!r}: this routilux reads version "
            f"{FORMAT_VERSION}"
        )
        raise DeserializationError(msg, path="version")
    return False


def _header(fmt: str) -> dict[str, Any]:
    return {"format": fmt, "version": FORMAT_VERSION}


# -- config values and callables --------------------------------------------------------

_CALLABLE_KEY = "$callable"
_ESCAPE_KEY = "$dict"


class _CallableMarker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _encode_config_other(value: Any) -> Any:
    if callable(value):
        try:
            return _CallableMarker(callable_name(value))
        except SerializationError as exc:
            raise BadValue(str(exc)) from None
    raise BadValue(not_json(value, _show(value, 200)))


def _finish_config(value: Any) -> Any:
    # Turn callable markers into {"$callable": name}; wrap plain dicts that look like a
    # marker in {"$dict": ...} so that they load back as themselves.
    if type(value) is dict:
        out = {k: _finish_config(v) for k, v in value.items()}
        if len(out) == 1 and (_CALLABLE_KEY in out or _ESCAPE_KEY in out):
            return {_ESCAPE_KEY: out}
        return out
    if type(value) is list:
        return [_finish_config(v) for v in value]
    if type(value) is _CallableMarker:
        return {_CALLABLE_KEY: value.name}
    return value


def _dump_config(config: Any, path: str) -> dict[str, Any]:
    if not isinstance(config, dict):
        msg = f"cannot serialize {path}: a routine config must be a dict, got {_show(config, 200)}"
        raise SerializationError(msg, path=path)
    try:
        encoded = dump_value(config, _encode_config_other)
    except BadValue as bad:
        where = format_path(path, bad.parts)
        msg = f"cannot serialize {where}: {bad.reason}"
        raise SerializationError(msg, path=where) from None
    result: dict[str, Any] = _finish_config(encoded)
    return result


def _load_config(value: Any, path: str) -> Any:
    # ``value`` is already a checked copy; resolve markers (by registry only).
    if type(value) is dict:
        if len(value) == 1:
            if _CALLABLE_KEY in value:
                return _resolve_callable(value[_CALLABLE_KEY], _sub(path, _CALLABLE_KEY))
            if _ESCAPE_KEY in value:
                inner = value[_ESCAPE_KEY]
                if type(inner) is not dict:
                    msg = f"expected an object (dict), got {_show(inner, 200)}"
                    raise DeserializationError(msg, path=_sub(path, _ESCAPE_KEY))
                return {k: _load_config(v, _sub(path, k)) for k, v in inner.items()}
        return {k: _load_config(v, _sub(path, k)) for k, v in value.items()}
    if type(value) is list:
        return [_load_config(v, _sub(path, i)) for i, v in enumerate(value)]
    return value


def _resolve_callable(name: Any, path: str) -> Any:
    if type(name) is not str:
        msg = f"a callable name must be a string, got {_show(name, 200)}"
        raise DeserializationError(msg, path=path)
    try:
        return get_callable(name)
    except RegistryError as exc:
        raise DeserializationError(str(exc), path=path) from None


# -- ErrorHandler -----------------------------------------------------------------------


def _error_handler_doc(eh: ErrorHandler, path: str) -> dict[str, Any]:
    names = []
    for i, cls in enumerate(eh.retryable_exceptions):
        try:
            names.append(exception_name(cls))
        except SerializationError as exc:
            where = _sub(_sub(path, "retryable_exceptions"), i)
            msg = f"cannot serialize {where}: {exc}"
            raise SerializationError(msg, path=where) from None
    return {
        "strategy": eh.strategy.value,
        "max_retries": eh.max_retries,
        "retry_delay": eh.retry_delay,
        "retry_backoff": eh.retry_backoff,
        "retry_count": eh.retry_count,
        "is_critical": eh.is_critical,
        "retryable_exceptions": names,
    }


def dump_error_handler(eh: ErrorHandler) -> dict[str, Any]:
    """
    Return an :class:`~routilux.ErrorHandler` as a ``routilux.error_handler`` document;
    exception classes are written by registered name.

    Raises:
        SerializationError: A retryable exception class has no name.
    """
    return {**_header(_ERROR_HANDLER_FORMAT), **_error_handler_doc(eh, "")}


def _build_error_handler(doc: _ErrorHandlerDoc, path: str) -> ErrorHandler:
    from routilux.exceptions import ConfigurationError
    from routilux.model._error_handler import ErrorHandler

    classes = []
    for i, name in enumerate(doc.retryable_exceptions):
        try:
            classes.append(get_exception(name))
        except RegistryError as exc:
            where = _sub(_sub(path, "retryable_exceptions"), i)
            raise DeserializationError(str(exc), path=where) from None
    for field, value, top in (
        ("max_retries", doc.max_retries, _MAX_RETRIES),
        ("retry_delay", doc.retry_delay, _MAX_SECONDS),
        ("retry_backoff", doc.retry_backoff, _MAX_SECONDS),
        ("retry_count", doc.retry_count, _MAX_RETRIES),
    ):
        if not 0 <= value <= top:
            msg = f"{field} must be between 0 and {top:g}, got {value!r}"
            raise DeserializationError(msg, path=_sub(path, field))
    try:
        eh = ErrorHandler(
            strategy=doc.strategy,
            max_retries=doc.max_retries,
            retry_delay=doc.retry_delay,
            retry_backoff=doc.retry_backoff,
            retryable_exceptions=tuple(classes) or None,
            is_critical=doc.is_critical,
        )
    except ConfigurationError as exc:
        raise DeserializationError(str(exc), path=_sub(path, exc.name)) from None
    eh.retry_count = doc.retry_count
    return eh


def load_error_handler_into(eh: ErrorHandler, data: Any) -> None:
    """
    Restore an :class:`~routilux.ErrorHandler` from :func:`dump_error_handler` output
    (or the original library's ``{"_type": "ErrorHandler", ...}``).

    Raises:
        DeserializationError: ``data`` is malformed or names an unknown exception class.
    """
    _check_header(data, _ERROR_HANDLER_FORMAT, legacy_type="ErrorHandler")
    fresh = _build_error_handler(_structure(data, _ErrorHandlerDoc, ""), "")
    eh.strategy = fresh.strategy
    eh.max_retries = fresh.max_retries
    eh.retry_delay = fresh.retry_delay
    eh.retry_backoff = fresh.retry_backoff
    eh.retryable_exceptions = fresh.retryable_exceptions
    eh.is_critical = fresh.is_critical
    eh.retry_count = fresh.retry_count


# -- Connection -------------------------------------------------------------------------


def _connection_doc(conn: Connection, path: str) -> dict[str, Any]:
    event, slot = conn.source_event, conn.target_slot
    source_id, target_id = conn.source_routine_id, conn.target_routine_id
    # A connection made without Flow.connect: its ends' routines give their ids.
    if source_id is None and event is not None and event.routine is not None:
        source_id = event.routine._id
    if target_id is None and slot is not None and slot.routine is not None:
        target_id = slot.routine._id
    values = {
        "source_routine_id": source_id,
        "source_event": event.name if event is not None else None,
        "target_routine_id": target_id,
        "target_slot": slot.name if slot is not None else None,
    }
    for key, value in values.items():
        if not isinstance(value, str):
            msg = (
                f"cannot serialize {path or 'the connection'} {conn!r}: its {key} is unknown "
                "(an end without a routine)"
            )
            raise SerializationError(msg, path=_sub(path, key))
    return {**values, "param_mapping": dict(conn.param_mapping)}


def dump_connection(conn: Connection) -> dict[str, Any]:
    """
    Return a :class:`~routilux.Connection` as a ``routilux.connection`` document: source
    and target routine ids, event and slot names, and the parameter mapping.

    Raises:
        SerializationError: An end of the connection is missing or belongs to no routine.
    """
    return {**_header(_CONNECTION_FORMAT), **_connection_doc(conn, "")}


def load_connection_into(conn: Connection, data: Any) -> None:
    """
    Read a :func:`dump_connection` document into ``conn``: routine ids and mapping, with
    unattached placeholder ends named after the event and slot (``Flow.deserialize``
    binds real ones).

    Raises:
        DeserializationError: ``data`` is malformed.
    """
    from routilux.model._event import Event
    from routilux.model._slot import Slot

    _check_header(data, _CONNECTION_FORMAT)
    doc = _structure(data, _ConnectionDoc, "")
    conn.source_routine_id = doc.source_routine_id
    conn.target_routine_id = doc.target_routine_id
    conn.source_event = Event(doc.source_event)
    conn.target_slot = Slot(doc.target_slot)
    conn.param_mapping = dict(doc.param_mapping)


# -- Routine ----------------------------------------------------------------------------


def _handler_doc(routine: Routine, slot: Slot, path: str) -> dict[str, str] | None:
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
        raise SerializationError(msg, path=_sub(path, "handler")) from None


def _find_method(routine: Routine, name: str) -> Any:
    # A plain function defined by the routine's class (not by Routine itself), found
    # without running descriptors, properties or __getattr__.
    from routilux.model._routine import Routine as _Base

    if not name or name.startswith("__"):
        return None
    for klass in type(routine).__mro__:
        if klass is _Base or klass is object:
            return None
        found = klass.__dict__.get(name)
        if found is not None:
            return found if isinstance(found, types.FunctionType) else None
    return None


def _merge_doc(slot: Slot, path: str) -> Any:
    strategy = slot.merge_strategy
    if isinstance(strategy, str):
        return str.__str__(strategy)
    try:
        return {"callable": callable_name(strategy)}
    except SerializationError as exc:
        msg = f"cannot serialize the merge strategy of {path}: {exc}"
        raise SerializationError(msg, path=_sub(path, "merge_strategy")) from None


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


def _routine_doc(routine: Routine, path: str, with_id: bool) -> dict[str, Any]:
    from routilux.names._registry import routine_type_name

    cls = type(routine)
    name = routine_type_name(cls)
    if name is None and _auto_name(cls) is not None:
        # Like a module-level function, a module-level class gets its registered name (its
        # class name) the first time this process serializes it; another process loads it
        # once the class's module registers it or is imported and serializes it.
        from routilux.names._registry import register_routine

        try:
            register_routine(cls)
        except RegistryError as exc:  # another class already has that name
            msg = (
                f"cannot serialize {path or 'the routine'} {routine!r}: {exc}; register "
                "it under a name of its own with routilux.registry.register_routine"
            )
            raise SerializationError(msg, path=_sub(path, "type")) from None
        name = routine_type_name(cls)
    if name is None:
        msg = (
            f"cannot serialize {path or 'the routine'} {routine!r}: its class "
            f"{cls.__module__}.{cls.__qualname__} is not registered; register it with "
            "routilux.registry.register_routine"
        )
        raise SerializationError(msg, path=_sub(path, "type"))
    required = _required_arguments(cls)  # type: ignore[arg-type]  # classes hash by identity
    if required:
        msg = (
            f"cannot serialize {path or 'the routine'} {routine!r}: loading rebuilds it as "
            f"{name}() with no arguments, and its class requires {', '.join(required)} "
            "(give them defaults and keep settings in set_config)"
        )
        raise SerializationError(msg, path=_sub(path, "type"))
    hook = getattr(routine, "serialize_config", None)
    if callable(hook):
        try:
            config = hook()
        except SerializationError as exc:
            if not path:
                raise
            where = format_path(path, [exc.path] if exc.path else [])
            msg = f"cannot serialize {where}: {exc}"
            raise SerializationError(msg, path=where) from exc
    else:
        config = routine._config
    doc: dict[str, Any] = {"type": name}
    if with_id:
        doc["id"] = routine._id
    doc["config"] = _dump_config(config, _sub(path, "config"))
    eh = routine._error_handler
    doc["error_handler"] = (
        _error_handler_doc(eh, _sub(path, "error_handler")) if eh is not None else None
    )
    slots = []
    for slot_name, slot in routine._slots.items():
        where = _sub(_sub(path, "slots"), slot_name)
        slots.append(
            {
                "name": slot_name,
                "merge_strategy": _merge_doc(slot, where),
                "handler": _handler_doc(routine, slot, where),
            }
        )
    doc["slots"] = slots
    doc["events"] = [
        {"name": event_name, "output_params": [str(p) for p in event.output_params]}
        for event_name, event in routine._events.items()
    ]
    return doc


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
            handler = _handler_doc(slot.routine, slot, where)
        else:
            try:
                handler = {"callable": callable_name(slot.handler)}
            except SerializationError as exc:
                msg = f"cannot serialize the handler of slot {where!r}: {exc}"
                raise SerializationError(msg, path="handler") from None
    return {
        **_header(_SLOT_FORMAT),
        "name": slot.name,
        "merge_strategy": _merge_doc(slot, where),
        "handler": handler,
    }


def load_slot_into(slot: Slot, data: Any) -> None:
    """
    Fill ``slot`` from a ``routilux.slot`` document (a method handler needs the slot's
    routine). Nothing the document names is imported; ``data`` is not changed.

    Raises:
        DeserializationError: The document is malformed; the message gives the path.
    """
    _check_header(data, _SLOT_FORMAT)
    body = {k: v for k, v in data.items() if k not in ("format", "version")}
    doc = _structure(body, _SlotDoc, "")
    strategy = _merge_from_doc(doc.merge_strategy, "merge_strategy")
    handler_doc = doc.handler
    if slot.routine is not None:
        handler = _handler_from_doc(slot.routine, handler_doc, "handler")
    elif handler_doc is None:
        handler = None
    elif len(handler_doc) == 1 and "callable" in handler_doc:
        handler = _resolve_callable(handler_doc["callable"], "handler.callable")
    else:
        msg = 'a slot without a routine takes only {"callable": name} as its handler'
        raise DeserializationError(msg, path="handler")
    slot.name = doc.name
    slot.merge_strategy = strategy
    slot.handler = handler


def dump_event(event: Event) -> dict[str, Any]:
    """
    Return an :class:`~routilux.Event` as a ``routilux.event`` document: name and
    ``output_params`` (connections belong to the flow).
    """
    return {
        **_header(_EVENT_FORMAT),
        "name": event.name,
        "output_params": [str(p) for p in event.output_params],
    }


def load_event_into(event: Event, data: Any) -> None:
    """
    Fill ``event`` from a ``routilux.event`` document; ``data`` is not changed.

    Raises:
        DeserializationError: The document is malformed; the message gives the path.
    """
    _check_header(data, _EVENT_FORMAT)
    body = {k: v for k, v in data.items() if k not in ("format", "version")}
    doc = _structure(body, _EventDoc, "")
    event.name = doc.name
    event.output_params = list(doc.output_params)


def dump_routine(routine: Routine) -> dict[str, Any]:
    """
    Return a :class:`~routilux.Routine` as a ``routilux.routine`` document: registered type
    name, id, config, error handler, slots and events.

    Raises:
        SerializationError: The class is not registered, or a handler, merge strategy or
            config value has no registered name; the message gives the path.
    """
    return {**_header(_ROUTINE_FORMAT), **_routine_doc(routine, "", with_id=True)}


def _handler_from_doc(routine: Routine, doc: dict[str, Any] | None, path: str) -> Any:
    if doc is None:
        return None
    if len(doc) == 1 and type(doc.get("method")) is str:
        name = doc["method"]
        func = _find_method(routine, name)
        if func is None:
            msg = f"{type(routine).__qualname__} has no handler method {name!r}"
            raise DeserializationError(msg, path=_sub(path, "method"))
        return types.MethodType(func, routine)
    if len(doc) == 1 and "callable" in doc:
        return _resolve_callable(doc["callable"], _sub(path, "callable"))
    msg = f'expected {{"method": name}} or {{"callable": name}}, got {_show(doc, 200)}'
    raise DeserializationError(msg, path=path)


def _merge_from_doc(value: Any, path: str) -> Any:
    if type(value) is str:
        return value
    if type(value) is dict and len(value) == 1 and "callable" in value:
        return _resolve_callable(value["callable"], _sub(path, "callable"))
    msg = f'expected a strategy name or {{"callable": name}}, got {_show(value, 200)}'
    raise DeserializationError(msg, path=path)


def _apply_routine_doc(routine: Routine, doc: _RoutineDoc, path: str) -> None:
    # Resolve everything first, then change the routine.
    config = _load_config(doc.config, _sub(path, "config"))
    eh = (
        _build_error_handler(doc.error_handler, _sub(path, "error_handler"))
        if doc.error_handler is not None
        else None
    )
    slots = []
    seen: set[str] = set()
    for i, slot_doc in enumerate(doc.slots):
        where = _sub(_sub(path, "slots"), i)
        if slot_doc.name in seen:
            msg = f"slot {slot_doc.name!r} is declared twice"
            raise DeserializationError(msg, path=_sub(where, "name"))
        seen.add(slot_doc.name)
        merge = _merge_from_doc(slot_doc.merge_strategy, _sub(where, "merge_strategy"))
        handler = _handler_from_doc(routine, slot_doc.handler, _sub(where, "handler"))
        slots.append((slot_doc.name, handler, merge))
    seen.clear()
    for i, event_doc in enumerate(doc.events):
        if event_doc.name in seen:
            msg = f"event {event_doc.name!r} is declared twice"
            raise DeserializationError(msg, path=_sub(_sub(_sub(path, "events"), i), "name"))
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
            raise DeserializationError(str(exc), path=_sub(path, "config")) from exc
    elif type(config) is dict:
        # Merged into what the constructor set: a document that sets some keys keeps the
        # routine's defaults for the others (a full document lists every key anyway).
        routine._config = {**routine._config, **config}
    else:
        routine._config = config
    routine._error_handler = eh
    for name, handler, merge in slots:
        slot = routine._slots.get(name)
        if slot is None:
            routine.define_slot(name, handler, merge)
        else:
            if slot.merge_strategy != merge:
                slot.merge_strategy = merge
            if handler != slot.handler:  # a bound method equals another of the same method
                slot.handler = handler  # re-analyses the signature: only when it changed
    for event_doc in doc.events:
        event = routine._events.get(event_doc.name)
        if event is None:
            routine.define_event(event_doc.name, list(event_doc.output_params))
        else:
            event.output_params = list(event_doc.output_params)


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
    from routilux.names._registry import routine_type_name

    _check_header(data, _ROUTINE_FORMAT)
    doc = _structure(data, _RoutineDoc, "")
    own = routine_type_name(type(routine))
    if own is not None and own != doc.type:
        msg = f"the document is a {_show(doc.type, 100)} routine, not a {own!r}"
        raise DeserializationError(msg, path="type")
    _apply_routine_doc(routine, doc, "")
    if doc.id is not None:
        routine._id = doc.id


# -- Flow -------------------------------------------------------------------------------


def dump_flow(flow: Flow) -> dict[str, Any]:
    """
    Return a :class:`~routilux.Flow`'s definition as a ``routilux.flow`` document.

    Raises:
        SerializationError: A routine class is not registered, or a handler, merge
            strategy, config value or exception class has no name; the message and
            ``path`` say where (for example ``routines.r1.config.routes[0]``).
    """
    eh = flow.error_handler
    routines = {
        rid: _routine_doc(routine, _sub("routines", rid), with_id=False)
        for rid, routine in flow.routines.items()
    }
    return {
        **_header(FLOW_FORMAT),
        "flow_id": flow.flow_id,
        "execution_strategy": flow.execution_strategy,
        "max_workers": flow.max_workers,
        "max_async": flow.max_async,
        "history_limit": flow.history_limit,
        "error_handler": _error_handler_doc(eh, "error_handler") if eh is not None else None,
        "routines": routines,
        "connections": [
            _connection_doc(conn, _sub("connections", i)) for i, conn in enumerate(flow.connections)
        ],
    }


def _check_count(value: int | None, path: str, top: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or not 1 <= value <= top:
        msg = f"expected an integer between 1 and {top}, got {value!r}"
        raise DeserializationError(msg, path=path)


def load_flow_into(flow: Flow, data: Any) -> None:
    """
    Rebuild ``flow`` from a :func:`dump_flow` document: each routine is created by
    ``cls()`` from the routine registry and restored (its config merged into the defaults
    the constructor set), and connections are made again with ``flow.connect`` by routine
    ids. The flow is changed only when the whole document is valid.

    Raises:
        DeserializationError: ``data`` is malformed or names an unknown routine type,
            method, callable, exception class, event or slot.

    .. versionchanged:: 0.10
       A routine's config is merged into its defaults instead of replacing them.
    """
    from routilux.exceptions import UnknownRoutineTypeError
    from routilux.model._definition import EXECUTION_STRATEGIES
    from routilux.names._registry import get_routine_class

    _check_header(data, FLOW_FORMAT)
    doc = _structure(data, _FlowDoc, "")
    if doc.execution_strategy not in EXECUTION_STRATEGIES:
        msg = f"unknown execution strategy {_show(doc.execution_strategy, 100)}"
        raise DeserializationError(msg, path="execution_strategy")
    _check_count(doc.max_workers, "max_workers", _MAX_WORKERS)
    _check_count(doc.max_async, "max_async", _MAX_WORKERS)
    _check_count(doc.history_limit, "history_limit", 2**62, allow_none=True)
    flow_eh = (
        _build_error_handler(doc.error_handler, "error_handler")
        if doc.error_handler is not None
        else None
    )
    built: dict[str, Routine] = {}
    for rid, rdoc in doc.routines.items():
        path = _sub("routines", rid)
        if not rid:
            msg = "a routine id must be a non-empty string"
            raise DeserializationError(msg, path="routines")
        try:
            cls = get_routine_class(rdoc.type)
        except UnknownRoutineTypeError as exc:
            raise DeserializationError(str(exc), path=_sub(path, "type")) from None
        try:
            routine = cls()
        except Exception as exc:
            msg = f"cannot create a {rdoc.type!r} routine with no arguments: {exc!r}"
            raise DeserializationError(msg, path=_sub(path, "type")) from exc
        _apply_routine_doc(routine, rdoc, path)
        built[rid] = routine
    for i, cdoc in enumerate(doc.connections):
        path = _sub("connections", i)
        source = built.get(cdoc.source_routine_id)
        target = built.get(cdoc.target_routine_id)
        checks = (
            (source is not None, "source_routine_id", f"no routine {cdoc.source_routine_id!r}"),
            (target is not None, "target_routine_id", f"no routine {cdoc.target_routine_id!r}"),
            (
                source is not None and cdoc.source_event in source._events,
                "source_event",
                f"routine {cdoc.source_routine_id!r} has no event {cdoc.source_event!r}",
            ),
            (
                target is not None and cdoc.target_slot in target._slots,
                "target_slot",
                f"routine {cdoc.target_routine_id!r} has no slot {cdoc.target_slot!r}",
            ),
        )
        for ok, field, msg in checks:
            if not ok:
                raise DeserializationError(msg, path=_sub(path, field))
    # Everything resolved: now change the flow.
    flow.redefine(
        flow_id=doc.flow_id,
        execution_strategy=doc.execution_strategy,
        max_workers=doc.max_workers,
        max_async=doc.max_async,
        history_limit=doc.history_limit,
        error_handler=flow_eh,
    )
    for rid, routine in built.items():
        flow.add_routine(routine, rid)
    for cdoc in doc.connections:
        flow.connect(
            cdoc.source_routine_id,
            cdoc.source_event,
            cdoc.target_routine_id,
            cdoc.target_slot,
            dict(cdoc.param_mapping) or None,
        )


# -- JobState ---------------------------------------------------------------------------


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    # Building or reading a big job allocates hundreds of thousands of containers that all
    # stay alive, so the cyclic collector's young-generation passes find nothing and cost
    # about as much as the work itself. Pause it for the copy, as json.loads cannot.
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _dump_field(value: Any, path: str) -> Any:
    if type(value) is list:  # a log: usually a list of flat dicts
        copies = _flat_copies(value, check_ints=False)
        if copies is not None:
            return copies
    try:
        return dump_value(value)
    except BadValue as bad:
        where = format_path(path, bad.parts)
        msg = f"cannot serialize {where}: {bad.reason}"
        raise SerializationError(msg, path=where) from None


_FLAT_TYPES = (str, int, float, bool, type(None))
_FLAT_SET = frozenset(_FLAT_TYPES)
_STR_ONLY = frozenset((str,))
_DICT_ONLY = frozenset((dict,))
_INT_LIMIT = 1 << _MAX_INT_BITS  # abs(i) < _INT_LIMIT  <=>  i.bit_length() <= _MAX_INT_BITS
_isoformat = datetime.isoformat
_fromtimestamp = datetime.fromtimestamp
_fourth = itemgetter(3)
_TUPLE_ONLY = frozenset((tuple,))
_FLOAT_ONLY = frozenset((float,))
_DATETIME_ONLY = frozenset((datetime,))


def _flat_copies(items: list[Any], check_ints: bool) -> list[dict[str, Any]] | None:
    # The common shape of a log: flat dicts, string keys, scalar values. Checked with a
    # few passes that run in C (no bytecode per value) and copied with dict(); ``None``
    # when anything differs, and the caller takes the careful path, which copies nested
    # values and reports errors with their paths. (For the history's payloads, one dict
    # per record, the per-record loop is as fast: the passes cost as much as the loop.)
    if not items:
        return []
    if set(map(type, items)) != _DICT_ONLY:
        return None
    if not _STR_ONLY.issuperset(map(type, chain.from_iterable(items))):
        return None
    values = list(chain.from_iterable(map(dict.values, items)))
    kinds = set(map(type, values))
    if not _FLAT_SET.issuperset(kinds):
        return None
    if check_ints and int in kinds:
        ints = list(compress(values, map(is_, map(type, values), repeat(int))))
        if max(ints) >= _INT_LIMIT or min(ints) <= -_INT_LIMIT:
            return None
    return list(map(dict, items))


def _dump_record(record: ExecutionRecord) -> dict[str, Any]:
    data = record.data
    try:
        plain = dump_value(data) if data else {}
    except BadValue as bad:
        bad.parts.append("data")
        raise
    return {
        "routine_id": record.routine_id,
        "event_name": record.event_name,
        "data": plain,
        "timestamp": record.timestamp.isoformat(),
    }


def _history_stamps(items: list[Any]) -> list[str]:
    # The ISO timestamps of the history's stored items, in C-level passes over items of
    # one kind (a call per record from Python costs more than the conversion itself).
    if set(map(type, items)) == _TUPLE_ONLY:
        whens = list(map(_fourth, items))
    else:  # records, or bookings and the records made of those read already
        whens = [item[3] if item.__class__ is tuple else item.timestamp for item in items]
    kinds = set(map(type, whens))
    if kinds == _FLOAT_ONLY:
        return list(map(_isoformat, map(_fromtimestamp, whens)))
    if kinds == _DATETIME_ONLY:
        return list(map(_isoformat, whens))
    return [_isoformat(_fromtimestamp(w) if w.__class__ is float else w) for w in whens]


def _dump_history(items: list[Any]) -> list[dict[str, Any]]:
    # The hot loop of a big job. ``items`` are the history's stored items: records, or
    # the scheduler's bookings (routine id, event, data, epoch float or datetime). Flat
    # payloads (string keys, scalar values) are copied with dict(); anything else goes
    # through the checked deep copy.
    out: list[dict[str, Any]] = []
    append = out.append
    i = 0
    try:
        stamps = _history_stamps(items)
        for i, (item, stamp) in enumerate(zip(items, stamps, strict=True)):  # noqa: B007
            if item.__class__ is tuple:  # a booking; an emit's names its target too
                rid, name, data = item[0], item[1], item[2]
            else:
                rid = item.routine_id
                name = item.event_name
                data = item.data
            if type(data) is dict:
                for key, value in data.items():
                    if type(key) is not str or type(value) not in _FLAT_TYPES:
                        data = dump_value(data)
                        break
                else:
                    data = dict(data)
            else:
                data = dump_value(data)
            append({"routine_id": rid, "event_name": name, "data": data, "timestamp": stamp})
    except (BadValue, AttributeError, TypeError, ValueError):
        pass
    else:
        return out
    for j, item in enumerate(items[i:], start=i):  # find the bad record
        try:
            _dump_record(_as_record(item))
        except BadValue as bad:
            where = format_path(f"execution_history[{j}]", bad.parts)
            msg = f"cannot serialize {where}: {bad.reason}"
            raise SerializationError(msg, path=where) from None
        except (AttributeError, TypeError):
            where = f"execution_history[{j}]"
            msg = f"cannot serialize {where}: not an ExecutionRecord: {_show(item, 200)}"
            raise SerializationError(msg, path=where) from None
    return out  # pragma: no cover - the fast path failed, so the loop raised


def _iso(value: Any, path: str) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    msg = f"cannot serialize {path}: expected a datetime, got {_show(value, 200)}"
    raise SerializationError(msg, path=path)


def dump_job_state(js: JobState, *, lenient: bool = False) -> dict[str, Any]:
    """
    Return a :class:`~routilux.JobState` as a ``routilux.job_state`` document: a deep,
    JSON-able snapshot taken under the job's lock (the output handler, locks, tracker and
    the running job's scheduler data are not part of it).

    Args:
        lenient: Replace every value a strict JSON writer refuses (a set, an object, NaN,
            an integer too large...) by a string naming it, instead of raising: the last
            record of a job that failed because its data cannot be written.

    Raises:
        SerializationError: The job holds data that is not JSON (a set, an object, a
            non-string key...); the message gives its path.
    """
    field = _sanitized_field if lenient else _dump_field
    history = _sanitized_history if lenient else _dump_history
    with js._lock, _gc_paused():
        return {
            **_header(JOB_STATE_FORMAT),
            "flow_id": js.flow_id,
            "job_id": js.job_id,
            "status": str.__str__(js.status) if isinstance(js.status, str) else js.status,
            "current_routine_id": js.current_routine_id,
            "routine_states": field(js.routine_states, "routine_states"),
            "execution_history": history(js.execution_history._raw()),
            "pause_points": field(js.pause_points, "pause_points"),
            "pending_tasks": field(js.pending_tasks, "pending_tasks"),
            "deferred_events": field(js.deferred_events, "deferred_events"),
            "shared_data": field(js.shared_data, "shared_data"),
            "shared_log": field(js.shared_log, "shared_log"),
            "output_log": field(js.output_log, "output_log"),
            "metadata": field(js.metadata, "metadata"),
            "checkpoint": field(js.checkpoint, "checkpoint"),
            "created_at": _iso(js.created_at, "created_at"),
            "updated_at": _iso(js.updated_at, "updated_at"),
            "history_limit": js.history_limit,
            "history_dropped": js.history_dropped,
            "failed_tasks": field(js.failed_tasks, "failed_tasks"),
            "errors": [dump_error_record(e) for e in js._errors or ()],
            "output_handler_failures": js.output_handler_failures,
            "checkpoint_seq": js.checkpoint_seq,
        }


def _sanitized_field(value: Any, path: str) -> Any:
    return sanitize(value)


def _sanitized_history(items: list[Any]) -> list[dict[str, Any]]:
    records = map(_as_record, items)
    return [
        {
            "routine_id": str(r.routine_id),
            "event_name": str(r.event_name),
            "data": sanitize(r.data),
            "timestamp": r.timestamp.isoformat(),
        }
        for r in records
    ]


def dumps_strict(data: Any, what: str = "") -> str:
    """
    Return ``data`` (plain JSON data) as compact strict JSON text (RFC 8259: no NaN or
    Infinity, which standard parsers refuse), as job stores write it.

    Raises:
        SerializationError: A value cannot be written; the message gives its path under
            ``what``.
    """
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        try:
            check_strict(data)
        except BadValue as bad:
            where = format_path(what, bad.parts)
            msg = f"cannot write {where or 'the value'}: {bad.reason}"
            raise SerializationError(msg, path=where) from None
        msg = f"cannot write {what or 'the value'} as JSON: {exc}"
        raise SerializationError(msg, path=what) from None


def dump_error_record(error: ErrorRecord) -> dict[str, Any]:
    """
    Return an :class:`~routilux.job_state.ErrorRecord` as plain data.
    """
    return {
        "routine_id": error.routine_id,
        "slot": error.slot,
        "error_type": error.error_type,
        "message": error.message,
        "attempt": error.attempt,
        "time": error.time.isoformat(),
        "strategy": error.strategy,
        "traceback": error.traceback,
    }


def _bad(reason: str, path: str) -> DeserializationError:
    return DeserializationError(reason, path=path)


def _load_checked(value: Any, path: str, want_dict: bool = True) -> Any:
    try:
        return load_object(value) if want_dict else load_value(value)
    except BadValue as bad:
        raise _bad(bad.reason, format_path(path, bad.parts)) from None


def _require_list(value: Any, path: str) -> list[Any]:
    if type(value) is not list:
        msg = f"expected a list, got {_show(value, 200)}"
        raise _bad(msg, path)
    return value


def _load_object_list(value: Any, path: str) -> list[dict[str, Any]]:
    items = _require_list(value, path)
    copies = _flat_copies(items, check_ints=True)
    if copies is not None:
        return copies
    out: list[dict[str, Any]] = []
    append = out.append
    i = 0
    try:
        for i, item in enumerate(items):  # noqa: B007 - ``i`` locates a failure
            append(load_object(item))
    except BadValue as bad:
        raise _bad(bad.reason, format_path(f"{path}[{i}]", bad.parts)) from None
    return out


def _check_record(item: Any, path: str, legacy: bool) -> tuple[str, str, dict[str, Any], datetime]:
    # The slow, precise check of one history record (used to explain a failure).
    if type(item) is not dict:
        msg = f"expected a record object (dict), got {_show(item, 200)}"
        raise _bad(msg, path)
    values = []
    for key in ("routine_id", "event_name"):
        if key not in item:
            raise _bad("required field missing", _sub(path, key))
        if type(item[key]) is not str:
            raise _bad(f"expected a string, got {_show(item[key], 200)}", _sub(path, key))
        values.append(item[key])
    raw = item.get("data")
    data = {} if raw is None else _load_checked(raw, _sub(path, "data"))
    stamp = item.get("timestamp")
    if stamp is None and (legacy or "timestamp" not in item):
        if not legacy:
            raise _bad("required field missing", _sub(path, "timestamp"))
        when = datetime.now()
    else:
        when = _parse_time(stamp, _sub(path, "timestamp"))
    return values[0], values[1], data, when


def _parse_time(value: Any, path: str) -> datetime:
    if type(value) is not str:
        raise _bad(f"expected an ISO 8601 timestamp string, got {_show(value, 200)}", path)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _bad(f"expected an ISO 8601 timestamp, got {_show(value, 200)}", path) from None


def _load_history(value: Any, legacy: bool) -> list[Booking]:
    # The hot loop of a big job: one pass, no call per field; on any doubt the record is
    # checked again slowly to report the exact path. Records are loaded as bookings
    # (tuples), which the history turns into ExecutionRecords when they are read.
    items = _require_list(value, "execution_history")
    fromiso = datetime.fromisoformat
    out: list[Booking] = []
    append = out.append
    i = 0
    try:
        for i, item in enumerate(items):  # noqa: B007 - ``i`` locates a failure
            rid = item["routine_id"]
            name = item["event_name"]
            stamp = item["timestamp"]
            data = item["data"]
            if type(rid) is not str or type(name) is not str or type(stamp) is not str:
                raise BadValue("bad field")
            if type(data) is not dict:
                raise BadValue("bad data")
            for key, val in data.items():
                if type(key) is not str:
                    data = load_object(data)
                    break
                kind = type(val)
                if kind is int:
                    if val.bit_length() > _MAX_INT_BITS:
                        data = load_object(data)
                        break
                elif kind is not str and kind is not float and kind is not bool and val is not None:
                    data = load_object(data)
                    break
            else:
                data = dict(data)
            append((rid, name, data, fromiso(stamp)))
    except (BadValue, KeyError, TypeError, ValueError):
        pass
    else:
        return out
    # The fast path failed on item ``i``: check it and the rest precisely.
    for j in range(i, len(items)):
        out.append(_check_record(items[j], f"execution_history[{j}]", legacy))
    return out


def _check_fields(
    item: Any, path: str, fields: dict[str, tuple[bool, tuple[type, ...]]]
) -> dict[str, Any]:
    if type(item) is not dict:
        raise _bad(f"expected an object (dict), got {_show(item, 200)}", path)
    for key, (required, kinds) in fields.items():
        if key not in item:
            if required:
                raise _bad("required field missing", _sub(path, key))
            continue
        value = item[key]
        if type(value) not in kinds:
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise _bad(f"expected {names}, got {_show(value, 200)}", _sub(path, key))
    result: dict[str, Any] = _load_checked(item, path)
    return result


_NoneType = type(None)
_PENDING_FIELDS: dict[str, tuple[bool, tuple[type, ...]]] = {
    "slot_routine_id": (True, (str,)),
    "slot_name": (True, (str,)),
    "data": (True, (dict,)),
    "connection_source_routine_id": (False, (str, _NoneType)),
    "connection_source_event_name": (False, (str, _NoneType)),
    "connection_target_routine_id": (False, (str, _NoneType)),
    "connection_target_slot_name": (False, (str, _NoneType)),
    "param_mapping": (False, (dict,)),
    "priority": (False, (int,)),
    "retry_count": (False, (int,)),
    "max_retries": (False, (int,)),
    "created_at": (False, (str, _NoneType)),
    "seq": (False, (int,)),
    "entry": (False, (bool,)),
}
_DEFERRED_FIELDS: dict[str, tuple[bool, tuple[type, ...]]] = {
    "routine_id": (True, (str,)),
    "event_name": (True, (str,)),
    "data": (True, (dict,)),
    "timestamp": (False, (str, _NoneType)),
}


def _load_pending(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_require_list(value, "pending_tasks")):
        path = f"pending_tasks[{i}]"
        task = _check_fields(item, path, _PENDING_FIELDS)
        for key, val in task.get("param_mapping", {}).items():
            if type(val) is not str:
                msg = f"expected a string, got {_show(val, 200)}"
                raise _bad(msg, _sub(_sub(path, "param_mapping"), key))
        for key in ("seq", "retry_count"):
            number = task.get(key, 0)
            if not 0 <= number < 2**62:
                raise _bad(f"expected an integer >= 0, got {number!r}", _sub(path, key))
        out.append(task)
    return out


_FAILED_FIELDS: dict[str, tuple[bool, tuple[type, ...]]] = {
    **_PENDING_FIELDS,
    "error": (False, (dict, _NoneType)),
}

_ERROR_FIELDS: dict[str, tuple[bool, tuple[type, ...]]] = {
    "routine_id": (True, (str,)),
    "slot": (True, (str,)),
    "error_type": (True, (str,)),
    "message": (True, (str,)),
    "attempt": (True, (int,)),
    "time": (True, (str,)),
    "strategy": (True, (str,)),
    "traceback": (False, (str,)),
}


def _load_failed(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_require_list(value, "failed_tasks")):
        task = _check_fields(item, f"failed_tasks[{i}]", _FAILED_FIELDS)
        for key in ("seq", "retry_count"):
            number = task.get(key, 0)
            if not 0 <= number < 2**62:
                msg = f"expected an integer >= 0, got {number!r}"
                raise _bad(msg, _sub(f"failed_tasks[{i}]", key))
        out.append(task)
    return out


def _load_errors(value: Any) -> list[ErrorRecord]:
    out = []
    for i, item in enumerate(_require_list(value, "errors")):
        path = f"errors[{i}]"
        fields = _check_fields(item, path, _ERROR_FIELDS)
        out.append(
            ErrorRecord(
                routine_id=fields["routine_id"],
                slot=fields["slot"],
                error_type=fields["error_type"],
                message=fields["message"],
                attempt=fields["attempt"],
                time=_parse_time(fields["time"], _sub(path, "time")),
                strategy=fields["strategy"],
                traceback=fields.get("traceback", ""),
            )
        )
    return out


def _load_deferred(value: Any) -> list[dict[str, Any]]:
    return [
        _check_fields(item, f"deferred_events[{i}]", _DEFERRED_FIELDS)
        for i, item in enumerate(_require_list(value, "deferred_events"))
    ]


def _load_routine_states(value: Any) -> dict[str, dict[str, Any]]:
    if type(value) is not dict:
        raise _bad(f"expected an object (dict), got {_show(value, 200)}", "routine_states")
    out = {}
    for key, state in value.items():
        if type(key) is not str:
            raise _bad(f"keys must be strings, got {_show(key, 100)}", "routine_states")
        try:
            out[key] = load_object(state)
        except BadValue as bad:
            raise _bad(bad.reason, format_path(_sub("routine_states", key), bad.parts)) from None
    return out


def load_job_state_into(js: JobState, data: Any) -> None:
    """
    Replace the state of ``js`` with a :func:`dump_job_state` document (or the original
    library's ``{"_type": "JobState", ...}``). Everything is checked and copied before
    ``js`` changes; its output handler is kept, and it is detached from any running job.

    Raises:
        DeserializationError: ``data`` is malformed; the message gives the bad field's path.
    """
    legacy = _check_header(data, JOB_STATE_FORMAT, legacy_type="JobState")
    if legacy:
        # The original kept the receiving JobState's values for keys a document lacks.
        with js._lock:
            kept = {"flow_id": js.flow_id, "job_id": js.job_id, "status": str(js.status)}
        data = {**kept, **data}
    head = _structure(data, _JobStateHead, "")
    limit = head.history_limit
    if limit is not None and not 1 <= limit < 2**62:
        raise _bad(f"expected a positive integer or null, got {limit!r}", "history_limit")
    if not 0 <= head.history_dropped < 2**62:
        raise _bad(f"expected an integer >= 0, got {head.history_dropped!r}", "history_dropped")
    get = data.get
    with _gc_paused():
        routine_states = _load_routine_states(get("routine_states", {}))
        history: Any = _load_history(get("execution_history", []), legacy)
        pause_points = _load_object_list(get("pause_points", []), "pause_points")
        pending = _load_pending(get("pending_tasks", []))
        deferred = _load_deferred(get("deferred_events", []))
        shared_data = _load_checked(get("shared_data", {}), "shared_data")
        shared_log = _load_object_list(get("shared_log", []), "shared_log")
        output_log = _load_object_list(get("output_log", []), "output_log")
        failed = _load_failed(get("failed_tasks", []))
        errors = _load_errors(get("errors", []))
    if not 0 <= head.checkpoint_seq < 2**62:
        raise _bad(f"expected an integer >= 0, got {head.checkpoint_seq!r}", "checkpoint_seq")
    if not 0 <= head.output_handler_failures < 2**62:
        got = head.output_handler_failures
        raise _bad(f"expected an integer >= 0, got {got!r}", "output_handler_failures")
    # A history longer than its limit keeps the newest records; the rest count as dropped.
    history = ExecutionHistory(history, limit, js._lock)
    history.dropped += head.history_dropped
    now = datetime.now()
    with js._lock:
        js.flow_id = head.flow_id
        js.job_id = head.job_id
        lifecycle.restore(js, head.status)
        js.current_routine_id = head.current_routine_id
        js.routine_states = routine_states
        js._listener = None
        js._adopt_history(history)
        js.pause_points = pause_points
        js.pending_tasks = pending
        js.deferred_events = deferred
        js.shared_data = shared_data
        js.shared_log = shared_log
        js.output_log = output_log
        js.failed_tasks = failed
        js._errors = errors or None
        js.output_handler_failures = head.output_handler_failures
        js.checkpoint_seq = head.checkpoint_seq
        js.metadata = dict(head.metadata)
        js.checkpoint = dict(head.checkpoint) if head.checkpoint is not None else None
        js.created_at = head.created_at or now
        js.updated_at = head.updated_at or now
        js.history_limit = limit
        js.execution_tracker = None
        js._run = None
        if js._cond is not None:
            js._cond.notify_all()


def load_record_into(record: ExecutionRecord, data: Any) -> None:
    """
    Fill an :class:`~routilux.ExecutionRecord` from a record dict (as found in a job
    document, or ``ExecutionRecord.serialize()`` output with its ``_type``).

    Raises:
        DeserializationError: ``data`` is malformed.
    """
    legacy = False
    if type(data) is dict and "format" in data:
        _check_header(data, _RECORD_FORMAT)
    elif type(data) is dict and "_type" in data:
        legacy = _check_header(data, _RECORD_FORMAT, legacy_type="ExecutionRecord")
    rid, name, payload, when = _check_record(data, "", legacy)
    record.routine_id = rid
    record.event_name = name
    record.data = payload
    record.timestamp = when


# -- ExecutionTracker -------------------------------------------------------------------


def dump_tracker(tracker: ExecutionTracker) -> dict[str, Any]:
    """
    Return an :class:`~routilux.ExecutionTracker` as a ``routilux.execution_tracker``
    document: its flow id, activation records by routine id, emitted events and
    performance metrics, as a JSON-able copy taken under the tracker's lock.

    Raises:
        SerializationError: A record holds data that is not JSON (a set, an object...);
            the message gives its path.
    """
    with tracker._lock:
        tracker._materialize()
        executions: dict[str, Any] = tracker._executions
        return {
            **_header(_TRACKER_FORMAT),
            "flow_id": tracker.flow_id,
            "routine_executions": {
                rid: _dump_field(list(records), _sub("routine_executions", rid))
                for rid, records in executions.items()
            },
            "event_flow": _dump_field(list(tracker._events), "event_flow"),
            "performance_metrics": _dump_field(dict(tracker._metrics or {}), "performance_metrics"),
        }


def load_tracker_into(tracker: ExecutionTracker, data: Any) -> None:
    """
    Restore an :class:`~routilux.ExecutionTracker` from a :func:`dump_tracker` document
    (``routilux.execution_tracker``), or the original library's
    ``{"_type": "ExecutionTracker", ...}``.

    Raises:
        DeserializationError: ``data`` is malformed.
    """
    _check_header(data, _TRACKER_FORMAT, legacy_type="ExecutionTracker")
    doc = _structure(data, _TrackerDoc, "")
    limit = tracker._limit
    executions: dict[str, list[dict[str, Any]]] = {
        rid: (deque(records, maxlen=limit) if limit else list(records))  # type: ignore[misc]
        for rid, records in doc.routine_executions.items()
    }
    events: Any = deque(doc.event_flow, maxlen=limit) if limit else list(doc.event_flow)
    # The tracker's properties take its own lock.
    tracker.flow_id = doc.flow_id
    tracker.routine_executions = executions
    tracker.event_flow = events
    tracker.performance_metrics = dict(doc.performance_metrics)
