"""
The routine registry: stable type names for Routine classes.

A name maps to a class either by explicit registration (:func:`register_routine`) or
through the ``routilux.routines`` entry-point group of an installed distribution. The
name is what a serialized flow stores; loading a flow resolves names only here, so a
document can never make routilux import a module it names.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar, overload

from routilux.exceptions import RegistryError, RoutiluxWarning, UnknownRoutineTypeError
from routilux.model._routine import Routine


__all__ = [
    "ENTRY_POINT_GROUP",
    "get_routine_class",
    "is_registered",
    "list_routines",
    "register_routine",
    "register_serializable",
    "routine_type_name",
    "unregister_routine",
]

ENTRY_POINT_GROUP = "routilux.routines"
"""The entry-point group routine packages declare their routines in (``name = "module:Class"``)."""

_R = TypeVar("_R", bound=type[Routine])

_lock = threading.RLock()
_by_name: dict[str, type[Routine]] = {}
_by_class: dict[type[Routine], str] = {}
_all_entry_points_loaded = False


def _add(name: str, cls: object, origin: str) -> type[Routine]:
    if not (isinstance(cls, type) and issubclass(cls, Routine)):
        msg = f"only Routine subclasses can be registered, got {cls!r} ({origin})"
        raise RegistryError(msg)
    label: object = name
    if not isinstance(label, str) or not name:
        msg = f"a routine type name must be a non-empty string, got {name!r}"
        raise RegistryError(msg)
    with _lock:
        existing = _by_name.get(name)
        if existing is not None and existing is not cls:
            msg = (
                f"routine type name {name!r} is taken by "
                f"{existing.__module__}.{existing.__qualname__}; "
                f"cannot register {cls.__module__}.{cls.__qualname__} under it ({origin})"
            )
            raise RegistryError(msg)
        _by_name[name] = cls
        _by_class.setdefault(cls, name)
    from routilux.plugins._manager import notify_loaded_plugins

    notify_loaded_plugins("routilux_routine_registered", name=name, routine_class=cls)
    return cls


@overload
def register_routine(cls: _R, *, name: str | None = None) -> _R: ...


@overload
def register_routine(cls: None = None, *, name: str | None = None) -> Callable[[_R], _R]: ...


def register_routine(cls: _R | None = None, *, name: str | None = None) -> Any:
    """
    Register a Routine subclass under ``name`` (its class name by default).

    Use as ``register_routine(MyRoutine)``, ``@register_routine`` or
    ``@register_routine(name="acme.MyRoutine")``. Registering the same class again is
    harmless; another class under a taken name is an error.

    Raises:
        RegistryError: The name is taken by another class, or ``cls`` is not a Routine.
    """

    def decorate(c: _R) -> _R:
        _add(name or c.__name__, c, "register_routine")
        return c

    if cls is None:
        return decorate
    return decorate(cls)


def unregister_routine(name: str) -> None:
    """
    Forget the class registered under ``name`` (mostly for tests).
    """
    with _lock:
        cls = _by_name.pop(name, None)
        if cls is not None and _by_class.get(cls) == name:
            del _by_class[cls]
            for other, c in _by_name.items():
                if c is cls:
                    _by_class[cls] = other
                    break


def _load_entry_point(name: str) -> type[Routine] | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        return _add(name, ep.load(), f"entry point {ep.value!r}")
    return None


def get_routine_class(name: str) -> type[Routine]:
    """
    Return the class registered under ``name``, loading it from the ``routilux.routines``
    entry points when needed.

    Raises:
        UnknownRoutineTypeError: No class is registered or declared under ``name``.
    """
    with _lock:
        cls = _by_name.get(name)
    if cls is not None:
        return cls
    if isinstance(name, str) and name:
        loaded = _load_entry_point(name)
        if loaded is not None:
            return loaded
    msg = (
        f"no routine class is registered under {name!r} (class not found in registry); "
        "register it with "
        "routilux.registry.register_routine or install the package that declares it "
        f"in the {ENTRY_POINT_GROUP!r} entry-point group"
    )
    raise UnknownRoutineTypeError(msg, name=str(name))


def is_registered(name: str) -> bool:
    """
    Tell whether ``name`` resolves to a routine class (registered or declared).
    """
    try:
        get_routine_class(name)
    except UnknownRoutineTypeError:
        return False
    return True


def routine_type_name(cls: type[Routine]) -> str | None:
    """
    Return the name ``cls`` is registered under, or ``None``.
    """
    with _lock:
        name = _by_class.get(cls)
    if name is not None or _all_entry_points_loaded:
        return name
    # Only entry points that can declare this class are loaded: those of its own top-level
    # package (its module is imported already), so other routine packages stay unimported.
    package = cls.__module__.partition(".")[0]
    _load_declared(lambda module: module.partition(".")[0] == package)
    with _lock:
        return _by_class.get(cls)


def _load_declared(wanted: Callable[[str], bool]) -> None:
    # Load the declared entry points whose module ``wanted`` accepts and that are not
    # registered yet.
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if not wanted(ep.module):
            continue
        with _lock:
            known = ep.name in _by_name
        if not known:
            _add(ep.name, ep.load(), f"entry point {ep.value!r}")


def list_routines() -> dict[str, type[Routine]]:
    """
    Return every routine class by name, loading all declared entry points.
    """
    global _all_entry_points_loaded
    _load_declared(lambda _module: True)
    _all_entry_points_loaded = True
    with _lock:
        return dict(_by_name)


def _resolve_exported_routine(name: str) -> type[Routine]:
    """
    Resolve ``from routilux import <Name>`` for routines of other packages (routilux-stdlib).

    Raises:
        ImportError: No installed package declares a routine of that name.
    """
    try:
        return get_routine_class(name)
    except UnknownRoutineTypeError:
        msg = (
            f"cannot import name {name!r} from 'routilux': it is not part of routilux-core; "
            "built-in routines come from routilux-stdlib (pip install routilux-stdlib)"
        )
        raise ImportError(msg, name=name) from None


register_routine(Routine)


def register_serializable(cls: type[Any]) -> type[Any]:
    """
    Register a Routine subclass under its class name so that flows using it can be loaded.

    Kept for code written against the original library, which registered any serializable
    class this way; new code uses :func:`register_routine`. Only routines
    are rebuilt by type name here (everything else in a document is plain data), so another
    class is returned unchanged with a :class:`~routilux.exceptions.RoutiluxWarning`.
    """
    from routilux.model._routine import Routine
    from routilux.names._registry import register_routine

    if isinstance(cls, type) and issubclass(cls, Routine):
        return register_routine(cls)
    msg = (
        f"register_serializable({cls.__module__}.{cls.__qualname__}): only Routine subclasses "
        "are rebuilt by type name; this class is not registered (documents hold plain data)"
    )
    warnings.warn(msg, RoutiluxWarning, stacklevel=2)
    return cls
