"""
Scale-out on PostgreSQL with real ``routilux worker`` subprocesses (research 1.8, cases 1-6).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scaleout.conftest import wait_until
from scaleout.routines import chain_flow, read_log


pytest.importorskip("procrastinate", reason="the postgres extra is not installed")

from routilux.exceptions import InvalidStateError, StaleAttemptError  # noqa: E402
from routilux.postgres import PostgresBackend, PostgresJobStore  # noqa: E402


@pytest.fixture
def backend(clean_db: str) -> Any:
    b = PostgresBackend(clean_db, stall_timeout=2.0, heartbeat=0.5, max_attempts=3)
    yield b
    b.close()


def test_smoke(backend: PostgresBackend, start_worker: Any) -> None:
    """One job runs on one worker."""
    start_worker()
    h = chain_flow().submit("step", {"n": 0, "steps": 3}, backend=backend)
    st = h.wait(timeout=20)
    assert "completed" == st.status
    assert [0, 1, 2, 3] == st.shared_data["trail"]
