"""
Deprecated: PostgreSQL scale-out moved to routilux-postgres (import ``routilux_postgres``).

Importing this module issues a :class:`DeprecationWarning` and gives the names of
:mod:`routilux_postgres`, which must be installed (``pip install routilux-postgres``, or the
``routilux-core[postgres]`` extra).

.. deprecated:: 0.10
   Import ``routilux_postgres`` instead; this module goes away in routilux-core 0.11.
"""

from __future__ import annotations

import warnings


warnings.warn(
    "routilux.postgres is deprecated and goes away in routilux-core 0.11: "
    "import routilux_postgres instead (from the routilux-postgres package)",
    DeprecationWarning,
    stacklevel=2,
)

try:
    from routilux_postgres import *  # noqa: F403 - the deprecated path gives all its names
    from routilux_postgres import __all__ as __all__
except ImportError as exc:  # pragma: no cover - depends on the installed packages
    msg = f"{__name__} moved to routilux-postgres: pip install routilux-postgres ({exc})"
    raise ImportError(msg) from exc
