"""
The page over a PostgreSQL job store: the same pages, API and answers as over SQLite.

Through the JobStore protocol only, on a throwaway cluster of tests/postgres's fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import BASE, CSRF
from postgres.conftest import clean_db, pg_dsn
from starlette.testclient import TestClient
from ui_routines import approval_job, failed_job, wait_status

from routilux.store import open_store
from routilux_ui import create_app


__all__ = ["clean_db", "pg_dsn"]  # the fixtures, shared with tests/postgres


@pytest.fixture
def pg_store(clean_db: str) -> Iterator[object]:
    """An empty PostgreSQL job store, opened from its URL as ``routilux ui --store`` does."""
    store = open_store(clean_db)
    assert "PostgresJobStore" == type(store).__name__
    yield store
    store.close()


def test_answer_on_a_postgres_store(pg_store: object) -> None:
    """Jobs, inbox, a job's page and an answer that completes the job, on PostgreSQL."""
    job = approval_job(pg_store)  # type: ignore[arg-type]
    failed = failed_job(pg_store)  # type: ignore[arg-type]
    app = create_app(pg_store, csrf_token=CSRF)  # type: ignore[arg-type]
    with TestClient(app, base_url=BASE, headers={"x-csrf-token": CSRF}) as client:
        body = client.get("/api/jobs").json()
        assert [failed, job] == [r["job_id"] for r in body["jobs"]]
        assert {"paused": 1, "failed": 1} == body["counts"]
        assert [job] == [item["job_id"] for item in client.get("/api/inbox").json()["items"]]
        assert 200 == client.get(f"/jobs/{failed}").status_code
        response = client.post(f"/api/jobs/{job}/resume", json={"values": {"answer": "yes"}})
        assert 202 == response.status_code
        assert "completed" == wait_status(pg_store, job, "completed")  # type: ignore[arg-type]
        assert 409 == client.post(f"/api/jobs/{job}/cancel").status_code
