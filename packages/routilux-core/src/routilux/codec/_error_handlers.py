"""
Error handlers as documents (``routilux.error_handler``).

An error handler is written as its strategy, retry settings and retryable exception
classes by registered name.
"""

from __future__ import annotations

from typing import Any

from routilux.codec._converter import check_header, header, structure
from routilux.codec._schemas import ErrorHandlerDoc
from routilux.codec._values import subpath
from routilux.exceptions import (
    ConfigurationError,
    DeserializationError,
    RegistryError,
    SerializationError,
)
from routilux.model._error_handler import ErrorHandler
from routilux.names._exceptions import exception_name, get_exception


__all__ = [
    "build_error_handler",
    "dump_error_handler",
    "error_handler_doc",
    "load_error_handler",
    "load_error_handler_into",
]

_FORMAT = "routilux.error_handler"

_MAX_RETRIES = 1_000_000
_MAX_SECONDS = 10.0**9


def error_handler_doc(eh: ErrorHandler, path: str) -> dict[str, Any]:
    """
    Return the fields of ``eh`` (found at ``path`` in its document) as document data.

    Raises:
        SerializationError: A retryable exception class has no name.
    """
    names = []
    for i, cls in enumerate(eh.retryable_exceptions):
        try:
            names.append(exception_name(cls))
        except SerializationError as exc:
            where = subpath(subpath(path, "retryable_exceptions"), i)
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
    return {**header(_FORMAT), **error_handler_doc(eh, "")}


def build_error_handler(doc: ErrorHandlerDoc, path: str) -> ErrorHandler:
    """
    Return a new :class:`~routilux.ErrorHandler` made from its structured document part
    (found at ``path``).

    Raises:
        DeserializationError: A setting is out of range, or an exception name is unknown.
    """
    classes = []
    for i, name in enumerate(doc.retryable_exceptions):
        try:
            classes.append(get_exception(name))
        except RegistryError as exc:
            where = subpath(subpath(path, "retryable_exceptions"), i)
            raise DeserializationError(str(exc), path=where) from None
    for field, value, top in (
        ("max_retries", doc.max_retries, _MAX_RETRIES),
        ("retry_delay", doc.retry_delay, _MAX_SECONDS),
        ("retry_backoff", doc.retry_backoff, _MAX_SECONDS),
        ("retry_count", doc.retry_count, _MAX_RETRIES),
    ):
        if not 0 <= value <= top:
            msg = f"{field} must be between 0 and {top:g}, got {value!r}"
            raise DeserializationError(msg, path=subpath(path, field))
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
        raise DeserializationError(str(exc), path=subpath(path, exc.name)) from None
    eh.retry_count = doc.retry_count
    return eh


def load_error_handler(data: Any) -> ErrorHandler:
    """
    Return a new :class:`~routilux.ErrorHandler` made from a :func:`dump_error_handler`
    document (or the original library's ``{"_type": "ErrorHandler", ...}``).

    Raises:
        DeserializationError: ``data`` is malformed or names an unknown exception class.

    .. versionadded:: 0.10
    """
    check_header(data, _FORMAT, legacy_type="ErrorHandler")
    return build_error_handler(structure(data, ErrorHandlerDoc, ""), "")


def load_error_handler_into(eh: ErrorHandler, data: Any) -> None:
    """
    Restore an :class:`~routilux.ErrorHandler` from :func:`dump_error_handler` output
    (or the original library's ``{"_type": "ErrorHandler", ...}``).

    Raises:
        DeserializationError: ``data`` is malformed or names an unknown exception class.
    """
    fresh = load_error_handler(data)
    eh.strategy = fresh.strategy
    eh.max_retries = fresh.max_retries
    eh.retry_delay = fresh.retry_delay
    eh.retry_backoff = fresh.retry_backoff
    eh.retryable_exceptions = fresh.retryable_exceptions
    eh.is_critical = fresh.is_critical
    eh.retry_count = fresh.retry_count
