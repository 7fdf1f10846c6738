"""
The exception registry: stable names for retryable exception classes.

``ErrorHandler.retryable_exceptions`` are written by these names. Built-in exceptions are
known by their own names (``"ValueError"``) and routilux's as ``"routilux.<Name>"``; others
are named ``module:qualname`` the first time they are serialized, or registered by name.
Loading resolves a name only here.
"""

from __future__ import annotations

import builtins

from routilux import exceptions as _exc
from routilux.exceptions import RegistryError, SerializationError
from routilux.names._registry import Registry, module_level_name


__all__ = ["exception_name", "get_exception", "register_exception"]


def _is_exception_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseException)


def _unknown(name: object) -> RegistryError:
    msg = (
        f"no exception class is registered under {name!r}; the process that loads "
        "must register it with routilux.serialization.register_exception"
    )
    return RegistryError(msg)


_exceptions: Registry[type[BaseException]] = Registry(
    "exception", accepts=_is_exception_class, accepted="exception classes", missing=_unknown
)


def _add_known_names() -> None:
    # Built-in exceptions by their own names, routilux's as "routilux.<Name>".
    for attr, value in vars(builtins).items():
        if _is_exception_class(value):
            _exceptions.add(attr, value)
    for attr in _exc.__all__:
        value = getattr(_exc, attr)
        if _is_exception_class(value):
            _exceptions.add(f"routilux.{attr}", value)


_add_known_names()


def register_exception(cls: type[BaseException], name: str | None = None) -> type[BaseException]:
    """
    Give an exception class a stable name for ``ErrorHandler.retryable_exceptions``.

    Built-in exceptions are known by their names (``"ValueError"``) and routilux's own as
    ``"routilux.<Name>"``. The default name of others is ``module:qualname``.

    Raises:
        RegistryError: ``cls`` is not an exception class, or the name is taken by another.
    """
    _exceptions.check(cls)
    chosen = name or module_level_name(cls)
    if not chosen:
        msg = f"{cls!r} has no module-level name; pass one: register_exception(cls, name=...)"
        raise RegistryError(msg)
    return _exceptions.add(chosen, cls)


def exception_name(cls: type[BaseException]) -> str:
    """
    Return the registered name of an exception class, registering a module-level class
    as ``module:qualname`` the first time.

    Raises:
        SerializationError: The class has no name (it was defined in a function).
    """
    name = _exceptions.name_of(cls)
    if name is not None:
        return name
    auto = module_level_name(cls)
    if auto is None:
        msg = (
            f"cannot serialize the exception class {cls!r}: it is not reachable by a "
            "module-level name; register it with routilux.serialization.register_exception"
        )
        raise SerializationError(msg)
    _exceptions.add(auto, cls)
    return auto


def get_exception(name: str) -> type[BaseException]:
    """
    Return the exception class registered under ``name``. Nothing is imported.

    Raises:
        RegistryError: No exception class is registered under ``name``.
    """
    return _exceptions.require(name)
