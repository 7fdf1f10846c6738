"""
Fixtures of the routilux-ui tests: a store, the page over it, and the page on a real port.

The page is driven by Starlette's TestClient, or served by uvicorn for the browser and
event-stream tests.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.testclient import TestClient

from routilux.store import SqliteJobStore
from routilux_ui import create_app


sys.path.insert(0, str(Path(__file__).parent))

CSRF = "test-csrf-token"
BASE = "http://127.0.0.1:8237"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    """An empty SQLite job store."""
    s = SqliteJobStore(tmp_path / "jobs.db")
    yield s
    s.close()


@pytest.fixture
def client(store: SqliteJobStore) -> Iterator[TestClient]:
    """The page over ``store`` (localhost, no token), its POSTs carrying the CSRF token."""
    app = create_app(store, csrf_token=CSRF, poll_interval=0.05)
    with TestClient(app, base_url=BASE, headers={"x-csrf-token": CSRF}) as c:
        yield c


class LiveServer:
    """The page served by uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, store: SqliteJobStore, **options: object) -> None:
        #: The pages' CSRF token.
        self.csrf = CSRF
        self.app = create_app(
            store,
            poll_interval=0.1,
            csrf_token=CSRF,
            store_label=".routilux/jobs.db",  # as `make ui` names it, for the screenshots
            **options,  # type: ignore[arg-type]
        )
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app, log_level="warning", ws="none", timeout_graceful_shutdown=5, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, args=([self.sock],), daemon=True)
        self.thread.start()
        started = threading.Event()
        for _ in range(500):
            if self.server.started:
                started.set()
                break
            started.wait(0.01)
        assert self.server.started, "uvicorn did not start"

    def stop(self) -> None:
        """End the event streams, stop the server and wait for it."""
        self.app.state.ui.closing.set()
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def live(store: SqliteJobStore) -> Iterator[LiveServer]:
    """The page over ``store``, served on a real port."""
    server = LiveServer(store)
    yield server
    server.stop()
