"""
Built-in routines for routilux, registered by name in the ``routilux.routines`` entry points.

Every routine here is also importable from ``routilux`` (``from routilux import TextClipper``)
when this package is installed.
"""

from __future__ import annotations

from typing import Any

from .collect import Aggregator, Batcher
from .control import Filter, Splitter
from .data import DataFlattener, DataTransformer, DataValidator
from .exceptions import ExpressionError, ExtractionError
from .extract import ResultExtractor
from .human import HumanInput
from .predicates import register_predicate, unregister_predicate
from .router import ConditionalRouter
from .text import TextClipper, TextRenderer
from .time_provider import TimeProvider


__all__ = [
    "ROUTINES",
    "Aggregator",
    "Batcher",
    "ConditionalRouter",
    "DataFlattener",
    "DataTransformer",
    "DataValidator",
    "ExpressionError",
    "ExtractionError",
    "Filter",
    "HumanInput",
    "ResultExtractor",
    "Splitter",
    "TextClipper",
    "TextRenderer",
    "TimeProvider",
    "register_predicate",
    "unregister_predicate",
]

ROUTINES: tuple[str, ...] = (
    "Aggregator",
    "Batcher",
    "ConditionalRouter",
    "DataFlattener",
    "DataTransformer",
    "DataValidator",
    "Filter",
    "HumanInput",
    "ResultExtractor",
    "Splitter",
    "TextClipper",
    "TextRenderer",
    "TimeProvider",
)
"""The names of the built-in routines, as registered in the entry points."""


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from ._version import __version__

        return __version__
    msg = f"module 'routilux_stdlib' has no attribute {name!r}"
    raise AttributeError(msg)
