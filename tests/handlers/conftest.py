"""
Fixtures of the routilux-handlers tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture
def structlog_reset() -> Iterator[None]:
    """Give structlog back the state it had before the test (capture_logs configures it)."""
    was = structlog.is_configured()
    config = structlog.get_config()
    yield
    if was:
        structlog.configure(**config)
    else:
        structlog.reset_defaults()
