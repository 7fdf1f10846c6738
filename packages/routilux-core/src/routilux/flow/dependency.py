"""
Dependency graph utilities: which routines feed which, and which can run next.

The public path of :mod:`routilux.model._dependency`.
"""

from __future__ import annotations

from routilux.model._dependency import (
    build_dependency_graph,
    get_ready_routines,
)


__all__ = [
    "build_dependency_graph",
    "get_ready_routines",
]
