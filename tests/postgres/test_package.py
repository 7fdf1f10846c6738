"""
routilux-postgres as a distribution: its public API, the store entry points that open_store
uses, a store's url, and the deprecated ``routilux.postgres`` re-export.
"""

from __future__ import annotations

import pytest
from helpers import check_all, check_moved_module


pytest.importorskip("routilux_postgres", reason="routilux-postgres is not installed")

import routilux_postgres
from routilux.store import JobStore, create_job, open_store


def test_public_api() -> None:
    """routilux_postgres lists exactly its public names; they import."""
    check_all("routilux_postgres")
    assert routilux_postgres.__version__.count(".") == 2


def test_deprecated_routilux_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing routilux.postgres warns, naming the new import, and gives the same names."""
    check_moved_module("routilux.postgres", "routilux_postgres", monkeypatch)


def test_open_store_opens_postgresql_urls(clean_db: str) -> None:
    """postgresql:// and postgres:// URLs open a PostgresJobStore (routilux.stores)."""
    job_id = ""
    for url in (clean_db, clean_db.replace("postgresql://", "postgres://", 1)):
        with open_store(url) as store:
            assert isinstance(store, routilux_postgres.PostgresJobStore)
            assert isinstance(store, JobStore)
            assert url == store.url
            if not job_id:
                job_id = create_job(store, {"flow_id": "f", "routines": {"a": {}}}, "a")
            assert [job_id] == [r.job_id for r in store.list_jobs()]


def test_url_of_a_keyword_dsn(clean_db: str) -> None:
    """A key=value DSN's url is a postgresql:// URL of the same database."""
    import psycopg.conninfo

    settings = psycopg.conninfo.conninfo_to_dict(clean_db)
    dsn = " ".join(f"{key}={value}" for key, value in settings.items())
    with routilux_postgres.PostgresJobStore(dsn) as store:
        url = store.url
        job_id = create_job(store, {"flow_id": "f", "routines": {"a": {}}}, "a")
    assert url.startswith("postgresql://?")
    with open_store(url) as again:
        assert "pending" == again.load_job(job_id).status
