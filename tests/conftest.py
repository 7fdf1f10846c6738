"""
Shared fixtures. The tests folder is put on sys.path so tests can import ``helpers``.
"""

from __future__ import annotations

import shutil
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


@pytest.fixture
def graphviz_dot() -> str:
    """The path of Graphviz's dot. .ci/run installs it, so its absence fails, never skips."""
    found = shutil.which("dot")
    if found is None:
        pytest.fail(
            "Graphviz's dot is not on PATH: install the graphviz system package "
            "(apt-get install graphviz; .ci/run installs it when it is missing)"
        )
    return found
