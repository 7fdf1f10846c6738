"""
The package's logger: standard logging, silent unless the application configures it.
"""

from __future__ import annotations

import logging


__all__ = ["logger"]

logger = logging.getLogger("routilux_stdlib")
# A library adds only a NullHandler so that Python's last-resort handler stays quiet.
logger.addHandler(logging.NullHandler())
