"""
Shared fixtures. The tests folder is put on sys.path so tests can import ``helpers``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from routilux import Flow


sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def make_flow() -> Iterator[Any]:
    """Build flows that are shut down after the test."""
    flows: list[Flow] = []

    def make(*args: Any, **kwargs: Any) -> Flow:
        flow = Flow(*args, **kwargs)
        flows.append(flow)
        return flow

    yield make
    for flow in flows:
        flow.shutdown(wait=False)
