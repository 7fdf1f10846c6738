"""
The callable registry: stable names for the callables a flow document refers to.

Handlers, merge strategies and config values are written by these names. A module-level
function (or class) is named ``module:qualname`` the first time it is serialized; anything
else must be registered by name. Loading resolves a name only here: nothing a document
names is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from routilux.exceptions import RegistryError, SerializationError
from routilux.names._registry import Registry, module_level_name


__all__ = ["callable_name", "get_callable", "register_callable", "unregister_callable"]

_F = TypeVar("_F")


def _unknown(name: object) -> RegistryError:
    msg = (
        f"no callable is registered under {name!r}; the process that loads must "
        "register it with routilux.serialization.register_callable"
    )
    return RegistryError(msg)


_callables: Registry[Any] = Registry(
    "callable", accepts=callable, accepted="callables", missing=_unknown
)


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
        _callables.check(f)
        chosen = name if name is not None else module_level_name(f)
        if chosen is None:
            msg = f"{f!r} has no module-level name; pass one: register_callable(func, name=...)"
            raise RegistryError(msg)
        return _callables.add(chosen, f)  # type: ignore[no-any-return]  # ``f`` itself

    if func is None or isinstance(func, str):
        if isinstance(func, str):  # @register_callable("name")
            name = func
        return decorate
    return decorate(func)


def unregister_callable(name: str) -> None:
    """
    Forget the callable registered under ``name`` (mostly for tests).
    """
    _callables.remove(name)


def callable_name(func: Any) -> str:
    """
    Return the registered name of ``func``; a module-level function (or class) is
    registered as ``module:qualname`` the first time it is asked for.

    Raises:
        SerializationError: ``func`` has no name: a lambda, a closure, a local function,
            a bound method or a callable object that was never registered.
    """
    name = _callables.name_of(func)
    if name is not None:
        return name
    auto = module_level_name(func)
    if auto is not None:
        _callables.add(auto, func)
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
    return _callables.require(name)
