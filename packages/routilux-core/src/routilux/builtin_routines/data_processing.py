"""
The data routines: DataTransformer, DataValidator.

The original library had them under this module path; it is kept for compatibility. The classes
come from routilux-stdlib through the routine registry (see :mod:`routilux.builtin_routines`).
"""

from __future__ import annotations

from routilux.builtin_routines import _registry_getattr


__all__ = ["DataTransformer", "DataValidator"]  # noqa: F822 (resolved by __getattr__)

__getattr__ = _registry_getattr(__name__, __all__)
