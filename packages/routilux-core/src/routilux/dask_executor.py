"""
Deprecated: the Dask executor moved to the routilux-dask distribution (``routilux_dask``).

Importing this module issues a :class:`DeprecationWarning` and gives the names of
:mod:`routilux_dask`, which must be installed (``pip install routilux-dask``, or the
``routilux-core[dask]`` extra).

.. deprecated:: 0.10
   Import ``routilux_dask`` instead; this module goes away in routilux-core 0.11.
"""

from __future__ import annotations

import warnings


warnings.warn(
    "routilux.dask_executor is deprecated and goes away in routilux-core 0.11: "
    "import routilux_dask instead (from the routilux-dask package)",
    DeprecationWarning,
    stacklevel=2,
)

try:
    from routilux_dask import *  # noqa: F403 - the deprecated path gives all its names
    from routilux_dask import __all__ as __all__
except ImportError as exc:  # pragma: no cover - depends on the installed packages
    msg = f"{__name__} moved to routilux-dask: pip install routilux-dask ({exc})"
    raise ImportError(msg) from exc
