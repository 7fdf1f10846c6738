"""
The cattrs converter of routilux documents, and the format header every document carries.

Every document is a dict with a format name and a version, such as
``{"format": "routilux.flow", "version": 1, ...}``. The document schemas
(:mod:`routilux.codec._schemas`) are attrs classes structured by a converter made by
:func:`make_converter`; a malformed document raises
:class:`~routilux.exceptions.DeserializationError` whose ``path`` names the bad field.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, NewType, TypeVar

import attrs
import cattrs
from cattrs.cols import list_structure_factory, mapping_structure_factory
from cattrs.errors import AttributeValidationNote, BaseValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn

from routilux.codec._values import BadValue, format_path, load_object, load_value, show
from routilux.exceptions import DeserializationError


__all__ = [
    "FORMAT_VERSION",
    "JsonObject",
    "JsonValue",
    "check_header",
    "configure_converter",
    "header",
    "make_converter",
    "structure",
]

FORMAT_VERSION = 1
"""The document version this module writes and reads."""

_T = TypeVar("_T")

JsonValue = NewType("JsonValue", object)
"""Any JSON value; loaded as a checked deep copy."""

JsonObject = NewType("JsonObject", dict)  # type: ignore[type-arg]  # a NewType of a bare dict
"""A JSON object (a dict with string keys); loaded as a checked deep copy."""


def _type_error(expected: str, value: Any) -> TypeError:
    return TypeError(f"expected {expected}, got {value!r}")


def _checked(
    kind: type, expected: str, inner: Callable[[Any, Any], Any]
) -> Callable[[Any, Any], Any]:
    # A structure hook that refuses anything but ``kind`` before ``inner`` structures it.
    def hook(value: Any, t: Any) -> Any:
        if type(value) is not kind:
            raise _type_error(expected, value)
        return inner(value, t)

    return hook


def _as_is(value: Any, _: Any) -> Any:
    return value


def _int_in_range(value: int, _: Any) -> int:
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


def _timestamp(value: str, _: Any) -> datetime:
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
        (str, _checked(str, "a string", _as_is)),
        (int, _checked(int, "an integer", _int_in_range)),
        (float, _structure_float),
        (bool, _checked(bool, "true or false", _as_is)),
        (datetime, _checked(str, "an ISO 8601 timestamp string", _timestamp)),
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


_lock = threading.Lock()
_converter_instance: cattrs.Converter | None = None


def _converter() -> cattrs.Converter:
    # The converter the loaders use, made on first use (nothing is made at import).
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


def structure(data: Any, cls: type[_T], path: str) -> _T:
    """
    Return ``data`` structured as the schema ``cls``, found at ``path`` in its document.

    Raises:
        DeserializationError: ``data`` does not fit; ``path`` names the first bad field.
    """
    try:
        return _converter().structure(data, cls)
    except BaseValidationError as exc:
        parts: list[str | int] = []
        leaf = _leaf(exc, parts)
        where = format_path(path, list(reversed(parts)))  # ``parts`` are outermost first
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


def check_header(data: Any, fmt: str, legacy_type: str | None = None) -> bool:
    """
    Check a document's format and version; return ``True`` for a document of the original
    library whose ``_type`` is ``legacy_type``.

    Raises:
        DeserializationError: ``data`` is not a dict, or its format or version is not
            ``fmt`` and :data:`FORMAT_VERSION`.
    """
    if type(data) is not dict:
        msg = f"expected a {fmt!r} document (a dict), got {show(data, 200)}"
        raise DeserializationError(msg)
    found = data.get("format")
    if found is None:
        if legacy_type is not None and data.get("_type") == legacy_type:
            return True
        if "_type" in data:
            msg = f"unknown document type {show(data['_type'], 100)}, expected format {fmt!r}"
            raise DeserializationError(msg, path="_type")
        msg = f"missing the format name (expected {fmt!r})"
        raise DeserializationError(msg, path="format")
    if found != fmt:
        msg = f"unknown format {show(found, 100)}, expected {fmt!r}"
        raise DeserializationError(msg, path="format")
    version = data.get("version")
    if type(version) is not int:
        msg = f"the version must be an integer, got {show(version, 100)}"
        raise DeserializationError(msg, path="version")
    if version != FORMAT_VERSION:
        msg = (
            f"unsupported version {version!r} of {fmt!r}: this routilux reads version "
            f"{FORMAT_VERSION}"
        )
        raise DeserializationError(msg, path="version")
    return False


def header(fmt: str) -> dict[str, Any]:
    """
    Return the header of a document of format ``fmt``: its format name and version.
    """
    return {"format": fmt, "version": FORMAT_VERSION}
