"""
``python -m routilux.cli``: the ``routilux`` command.
"""

from __future__ import annotations

import sys

from routilux.cli import main


sys.exit(main())
