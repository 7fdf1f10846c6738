"""
Conditions of ConditionalRouter and Filter: named predicates, expressions, field matches.

A condition is one of:

* the name of a predicate registered with :func:`register_predicate` (a string that is a
  registered name is always the predicate, never an expression);
* any other string: a safe expression over ``data``, ``config`` and ``stats`` (see
  :mod:`routilux_stdlib._expr`);
* a dict: field matching, every key must be in the data and compare equal (or satisfy the
  expected value when it is a callable);
* a callable (in-process only unless it is a registered predicate or a module-level
  function the serializer can name).

A callable (and a registered predicate) is called by its parameter names: with one
parameter ``f(data)``; with two, ``f(data=data, config=config)`` when one is named
``config``, else ``f(data=data, stats=stats)`` when one is named ``stats``, else
``f(data, config)``; with more, keyword arguments for those named ``data`` and ``config``
(and ``stats`` only together with ``config``), or ``f(data)`` when none is. If that call
raises, the callable is called once more as ``f(data)``.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast, overload

from routilux.exceptions import RegistryError, SerializationError

from ._expr import check_expression, evaluate
from ._log import logger


__all__ = [
    "Condition",
    "check_condition",
    "condition_matches",
    "condition_to_data",
    "evaluate_condition",
    "get_predicate",
    "predicate_name",
    "register_predicate",
    "unregister_predicate",
]

Condition = Any
"""A predicate name, an expression string, a field-match dict or a callable."""

_F = TypeVar("_F", bound=Callable[..., Any])
_RESERVED = frozenset({"data", "config", "stats"})

_lock = threading.Lock()
_predicates: dict[str, Callable[..., Any]] = {}


@overload
def register_predicate(func: _F, *, name: str | None = None) -> _F: ...


@overload
def register_predicate(func: None = None, *, name: str | None = None) -> Callable[[_F], _F]: ...


def register_predicate(func: _F | None = None, *, name: str | None = None) -> Any:
    """
    Register a predicate under ``name`` (its ``__name__`` by default) so that conditions
    can name it and flows using it serialize.

    Use as ``register_predicate(f)``, ``@register_predicate`` or
    ``@register_predicate(name="is_urgent")``. The predicate is called like a callable
    condition (see the module documentation): ``f(data)``, or with ``config``/``stats`` by
    parameter name.

    Raises:
        RegistryError: The name is taken by another function, is not an identifier, or is
            one of ``data``, ``config``, ``stats``.
    """

    def decorate(f: _F) -> _F:
        key = name or getattr(f, "__name__", "")
        if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
            msg = f"a predicate name must be an identifier not starting with '_', got {key!r}"
            raise RegistryError(msg)
        if key in _RESERVED:
            msg = f"{key!r} is an expression name and cannot name a predicate"
            raise RegistryError(msg)
        if not callable(cast(Any, f)):  # checked at run time for untyped callers
            msg = f"a predicate must be callable, got {f!r}"
            raise RegistryError(msg)
        with _lock:
            existing = _predicates.get(key)
            if existing is not None and existing is not f:
                msg = f"predicate name {key!r} is already registered to {existing!r}"
                raise RegistryError(msg)
            _predicates[key] = f
        return f

    if func is None:
        return decorate
    return decorate(func)


def unregister_predicate(name: str) -> None:
    """
    Forget the predicate registered under ``name`` (mostly for tests).
    """
    with _lock:
        _predicates.pop(name, None)


def get_predicate(name: str) -> Callable[..., Any] | None:
    """
    Return the predicate registered under ``name``, or ``None``.
    """
    with _lock:
        return _predicates.get(name)


def predicate_name(func: Callable[..., Any]) -> str | None:
    """
    Return the name ``func`` is registered under as a predicate, or ``None``.
    """
    with _lock:
        for key, f in _predicates.items():
            if f is func:
                return key
    return None


def check_condition(condition: Condition) -> None:
    """
    Check a condition when it is declared: an expression string must be allowed.

    Raises:
        ExpressionError: A string condition is neither a registered predicate nor an
            allowed expression.
        TypeError: The condition is of no supported kind.
    """
    if isinstance(condition, str):
        if get_predicate(condition) is None:
            check_expression(condition)
    elif not (isinstance(condition, Mapping) or callable(condition)):
        msg = f"a condition must be a string, a dict or a callable, got {condition!r}"
        raise TypeError(msg)


def _dispatch(
    func: Callable[..., Any], data: Any, config: dict[str, Any], stats: dict[str, Any]
) -> Any:
    # The call is chosen by the parameter names (SPEC 17.8).
    try:
        names = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return func(data)
    if len(names) == 1:
        return func(data)
    if len(names) == 2:
        for extra, value in (("config", config), ("stats", stats)):
            if extra in names:
                # The other parameter gets the data, whatever its name (the original assumed
                # ``data`` and failed on any other name).
                other = names[0] if names[1] == extra else names[1]
                return func(**{other: data, extra: value})
        return func(data, config)
    kwargs: dict[str, Any] = {}
    if "data" in names:
        kwargs["data"] = data
    if "config" in names:
        kwargs["config"] = config
        if "stats" in names:
            kwargs["stats"] = stats
    return func(**kwargs) if kwargs else func(data)


def _call_predicate(
    func: Callable[..., Any], data: Any, config: dict[str, Any], stats: dict[str, Any]
) -> Any:
    try:
        return _dispatch(func, data, config, stats)
    except Exception:  # noqa: BLE001 - one more try with f(data); its error is the caller's
        return func(data)


def evaluate_condition(
    condition: Condition, data: Any, config: dict[str, Any], stats: dict[str, Any]
) -> bool:
    """
    Tell whether ``data`` satisfies ``condition``.

    Raises:
        ExpressionError: The condition is an expression the safe evaluator refuses.
        Exception: Whatever the condition raised while it ran; callers decide whether an
            error means "no match".
    """
    if isinstance(condition, str):
        predicate = get_predicate(condition)
        if predicate is not None:
            return bool(_call_predicate(predicate, data, config, stats))
        return bool(evaluate(condition, {"data": data, "config": config, "stats": stats}))
    if isinstance(condition, Mapping):
        if not isinstance(data, Mapping):
            return False
        for key, expected in condition.items():
            if key not in data:
                return False
            actual = data[key]
            if callable(expected):
                if not expected(actual):
                    return False
            elif actual != expected:
                return False
        return True
    if callable(condition):
        return bool(_call_predicate(condition, data, config, stats))
    msg = f"a condition must be a string, a dict or a callable, got {condition!r}"
    raise TypeError(msg)


def condition_matches(
    condition: Condition, data: Any, config: dict[str, Any], stats: dict[str, Any]
) -> bool:
    """
    Tell whether ``data`` satisfies ``condition``, at run time: a condition that raises
    while it is evaluated (the safe evaluator's own refusals, such as a method not allowed
    on the value's type or a value too large, included) does not match. The error is
    logged at debug level on the ``routilux_stdlib`` logger.
    """
    try:
        return evaluate_condition(condition, data, config, stats)
    except Exception as exc:  # noqa: BLE001 - any error means "no match" (SPEC 17.8)
        logger.debug("condition %r raised %r: no match", condition, exc)
        return False


def _portable_callable(func: Callable[..., Any], path: str, what: str) -> Any:
    # A registered predicate is written as its name; a module-level function is left for
    # the Flow serializer, which writes it as a registered callable name.
    name = predicate_name(func)
    if name is not None:
        return name
    from routilux.serialization import callable_name

    try:
        callable_name(func)
    except SerializationError as exc:
        msg = (
            f"{what}: the condition {func!r} cannot be serialized: it is a lambda, closure "
            "or other callable with no name; register it with "
            f"routilux_stdlib.register_predicate or write it as an expression ({exc})"
        )
        raise SerializationError(msg, path=path) from None
    return func


def condition_to_data(condition: Condition, path: str, what: str) -> Any:
    """
    Return ``condition`` ready for Flow serialization: strings and plain dicts as they
    are, a registered predicate as its name, a module-level function as itself (the
    serializer writes it by registered callable name).

    Raises:
        SerializationError: The condition is (or a dict condition holds) a lambda, closure
            or other callable without a name. Its ``path`` is ``path`` (the condition's
            path in the routine, such as ``config.routes[0][1]``), with the key appended
            for a callable in a dict condition; the message starts with ``what`` (for
            example the route's name).
        ExpressionError: A string condition is not an allowed expression.
    """
    if isinstance(condition, str):
        check_condition(condition)
        return condition
    if isinstance(condition, Mapping):
        return {
            str(key): _portable_callable(expected, f"{path}.{key}", f"{what}, field {key!r}")
            if callable(expected)
            else expected
            for key, expected in condition.items()
        }
    if callable(condition):
        return _portable_callable(condition, path, what)
    msg = f"{what}: cannot serialize condition {condition!r}"
    raise SerializationError(msg, path=path)
