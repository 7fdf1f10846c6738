"""
The routine registry: stable type names for Routine classes.

The public path of :mod:`routilux.names._routines`.
"""

from __future__ import annotations

from routilux.names._routines import (
    ENTRY_POINT_GROUP,
    get_routine_class,
    is_registered,
    list_routines,
    register_routine,
    routine_type_name,
    unregister_routine,
)


__all__ = [
    "ENTRY_POINT_GROUP",
    "get_routine_class",
    "is_registered",
    "list_routines",
    "register_routine",
    "routine_type_name",
    "unregister_routine",
]
