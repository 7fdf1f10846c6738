"""
Output handlers and hook implementations for routilux.
"""

from __future__ import annotations


__all__: list[str] = []
