"""
The routine registry: stable type names for Routine classes.

A name maps to a class either by explicit registration (:func:`register_routine`) or
through the ``routilux.routines`` entry-point group of an installed distribution. The
name is what a serialized flow stores; loading a flow resolves names only here, so a
document can never make routilux import a module it names.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar, overload

from routilux.exceptions import RoutiluxWarning, UnknownRoutineTypeError
from routilux.model._routine import Routine
from routilux.names._registry import Registry


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


def _is_routine_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, Routine)


def _unknown(name: object) -> UnknownRoutineTypeError:
    msg = (
        f"no routine class is registered under {name!r} (class not found in registry); "
        "register it with "
        "routilux.registry.register_routine or install the package that declares it "
        f"in the {ENTRY_POINT_GROUP!r} entry-point group"
    )
    return UnknownRoutineTypeError(msg, name=str(name))


def _registered(name: str, cls: type[Routine]) -> None:
    from routilux.plugins._manager import notify_loaded_plugins

    notify_loaded_plugins("routilux_routine_registered", name=name, routine_class=cls)


_routines: Registry[type[Routine]] = Registry(
    "routine type",
    accepts=_is_routine_class,
    accepted="Routine subclasses",
    missing=_unknown,
    group=ENTRY_POINT_GROUP,
    on_add=_registered,
)


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
        _routines.add(name or c.__name__, c, "register_routine")
        return c

    if cls is None:
        return decorate
    return decorate(cls)


def unregister_routine(name: str) -> None:
    """
    Forget the class registered under ``name`` (mostly for tests).
    """
    _routines.remove(name)


def get_routine_class(name: str) -> type[Routine]:
    """
    Return the class registered under ``name``, loading it from the ``routilux.routines``
    entry points when needed.

    Raises:
        UnknownRoutineTypeError: No class is registered or declared under ``name``.
    """
    return _routines.require(name)


def is_registered(name: str) -> bool:
    """
    Tell whether ``name`` resolves to a routine class (registered or declared).
    """
    return _routines.get(name) is not None


def routine_type_name(cls: type[Routine]) -> str | None:
    """
    Return the name ``cls`` is registered under, or ``None``.
    """
    name = _routines.name_of(cls)
    if name is not None or _routines.all_declared_loaded:
        return name
    # Only entry points that can declare this class are loaded: those of its own top-level
    # package (its module is imported already), so other routine packages stay unimported.
    package = cls.__module__.partition(".")[0]
    _routines.load_declared(lambda module: module.partition(".")[0] == package)
    return _routines.name_of(cls)


def list_routines() -> dict[str, type[Routine]]:
    """
    Return every routine class by name, loading all declared entry points.
    """
    return _routines.as_dict()


def _resolve_exported_routine(name: str) -> type[Routine]:
    """
    Resolve ``from routilux import <Name>`` for routines of other packages (routilux-stdlib).

    Raises:
        ImportError: No installed package declares a routine of that name.
    """
    cls = _routines.get(name)
    if cls is None:
        msg = (
            f"cannot import name {name!r} from 'routilux': it is not part of routilux-core; "
            "built-in routines come from routilux-stdlib (pip install routilux-stdlib)"
        )
        raise ImportError(msg, name=name)
    return cls


def register_serializable(cls: type[Any]) -> type[Any]:
    """
    Register a Routine subclass under its class name so that flows using it can be loaded.

    Kept for code written against the original library, which registered any serializable
    class this way; new code uses :func:`register_routine`. Only routines
    are rebuilt by type name here (everything else in a document is plain data), so another
    class is returned unchanged with a :class:`~routilux.exceptions.RoutiluxWarning`.
    """
    if _is_routine_class(cls):
        return register_routine(cls)
    msg = (
        f"register_serializable({cls.__module__}.{cls.__qualname__}): only Routine subclasses "
        "are rebuilt by type name; this class is not registered (documents hold plain data)"
    )
    warnings.warn(msg, RoutiluxWarning, stacklevel=2)
    return cls


register_routine(Routine)
