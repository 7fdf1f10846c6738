"""
Routine configs as document data: JSON values, with callables written by registered name.

A callable in a config is written ``{"$callable": name}``; a plain dict that looks like
such a marker is wrapped in ``{"$dict": ...}`` so that it loads back as itself. Loading
resolves a name only through the callable registry, and never calls what it finds.
"""

from __future__ import annotations

from typing import Any

from routilux.codec._values import BadValue, dump_value, format_path, not_json, show, subpath
from routilux.exceptions import DeserializationError, RegistryError, SerializationError
from routilux.names._callables import callable_name, get_callable


__all__ = ["dump_config", "load_config", "resolve_callable"]

_CALLABLE_KEY = "$callable"
_ESCAPE_KEY = "$dict"


class _CallableMarker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _encode_other(value: Any) -> Any:
    if callable(value):
        try:
            return _CallableMarker(callable_name(value))
        except SerializationError as exc:
            raise BadValue(str(exc)) from None
    raise BadValue(not_json(value, show(value, 200)))


def _finish(value: Any) -> Any:
    # Turn callable markers into {"$callable": name}; wrap plain dicts that look like a
    # marker in {"$dict": ...} so that they load back as themselves.
    if type(value) is dict:
        out = {k: _finish(v) for k, v in value.items()}
        if len(out) == 1 and (_CALLABLE_KEY in out or _ESCAPE_KEY in out):
            return {_ESCAPE_KEY: out}
        return out
    if type(value) is list:
        return [_finish(v) for v in value]
    if type(value) is _CallableMarker:
        return {_CALLABLE_KEY: value.name}
    return value


def dump_config(config: Any, path: str) -> dict[str, Any]:
    """
    Return a routine's config (found at ``path``) as document data.

    Raises:
        SerializationError: ``config`` is not a dict, or holds a value that is neither
            JSON nor a named callable; the message gives its path.
    """
    if not isinstance(config, dict):
        msg = f"cannot serialize {path}: a routine config must be a dict, got {show(config, 200)}"
        raise SerializationError(msg, path=path)
    try:
        encoded = dump_value(config, _encode_other)
    except BadValue as bad:
        where = format_path(path, bad.parts)
        msg = f"cannot serialize {where}: {bad.reason}"
        raise SerializationError(msg, path=where) from None
    result: dict[str, Any] = _finish(encoded)
    return result


def load_config(value: Any, path: str) -> Any:
    """
    Return a config value (already a checked copy) with its markers resolved: callables
    by registered name, escaped dicts as themselves.

    Raises:
        DeserializationError: A marker is malformed or names an unknown callable.
    """
    if type(value) is dict:
        if len(value) == 1:
            if _CALLABLE_KEY in value:
                return resolve_callable(value[_CALLABLE_KEY], subpath(path, _CALLABLE_KEY))
            if _ESCAPE_KEY in value:
                inner = value[_ESCAPE_KEY]
                if type(inner) is not dict:
                    msg = f"expected an object (dict), got {show(inner, 200)}"
                    raise DeserializationError(msg, path=subpath(path, _ESCAPE_KEY))
                return {k: load_config(v, subpath(path, k)) for k, v in inner.items()}
        return {k: load_config(v, subpath(path, k)) for k, v in value.items()}
    if type(value) is list:
        return [load_config(v, subpath(path, i)) for i, v in enumerate(value)]
    return value


def resolve_callable(name: Any, path: str) -> Any:
    """
    Return the callable registered under ``name`` (found at ``path``). Nothing is
    imported or called.

    Raises:
        DeserializationError: ``name`` is not a string or names no registered callable.
    """
    if type(name) is not str:
        msg = f"a callable name must be a string, got {show(name, 200)}"
        raise DeserializationError(msg, path=path)
    try:
        return get_callable(name)
    except RegistryError as exc:
        raise DeserializationError(str(exc), path=path) from None
