"""
The built-in routines under the original library's module paths, kept for compatibility.

Code written against the original imports ``from routilux.builtin_routines import
TextClipper`` or from one of the sub-modules :mod:`~routilux.builtin_routines.text_processing`,
:mod:`~routilux.builtin_routines.utils`, :mod:`~routilux.builtin_routines.data_processing` and
:mod:`~routilux.builtin_routines.control_flow`. The routines themselves live in routilux-stdlib:
these modules look each name up in the routine registry on first use (``routilux.routines``
entry points), so importing them does not import routilux-stdlib, and the class they give is
the one routilux-stdlib registers. Without routilux-stdlib, using a name raises
:class:`ImportError` saying to install it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


__all__ = [
    "ConditionalRouter",
    "DataFlattener",
    "DataTransformer",
    "DataValidator",
    "ResultExtractor",
    "TextClipper",
    "TextRenderer",
    "TimeProvider",
]


def _registry_getattr(module: str, names: Sequence[str]) -> Callable[[str], Any]:
    """
    Build the module-level ``__getattr__`` of ``module``: each of ``names`` resolves to the
    routine class registered under it; any other name is an :class:`AttributeError`.
    """
    exported = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name in exported:
            from routilux.names._routines import _resolve_exported_routine

            return _resolve_exported_routine(name)
        msg = f"module {module!r} has no attribute {name!r} (it provides {', '.join(names)})"
        raise AttributeError(msg)

    return __getattr__


__getattr__ = _registry_getattr(__name__, __all__)
