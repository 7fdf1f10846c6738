"""
routilux.store.open_store: stores by path or URL, SQLite in core and other kinds through the
``routilux.stores`` entry points; a store's url opens it again.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from pathlib import Path
from typing import Any

import pytest

from routilux.cli import main
from routilux.exceptions import ConfigurationError
from routilux.store import (
    STORES_ENTRY_POINT_GROUP,
    JobStore,
    SqliteJobStore,
    create_job,
    open_store,
    sqlite_path,
)


def _only_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: md.EntryPoint) -> None:
    # The installed entry points of the routilux.stores group are exactly ``eps``.
    real = md.entry_points

    def entry_points(**params: Any) -> md.EntryPoints:
        if params.get("group") != STORES_ENTRY_POINT_GROUP:
            return real(**params)
        return md.EntryPoints(eps).select(**params)

    monkeypatch.setattr(md, "entry_points", entry_points)


def _store_ep(name: str, value: str) -> md.EntryPoint:
    return md.EntryPoint(name=name, value=value, group=STORES_ENTRY_POINT_GROUP)


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("jobs.db", "jobs.db"),
        ("dir/jobs.db", "dir/jobs.db"),
        (":memory:", ":memory:"),
        ("sqlite:jobs.db", "jobs.db"),
        ("SQLite:jobs.db", "jobs.db"),
        ("sqlite:///srv/jobs.db", "/srv/jobs.db"),
        ("sqlite:/srv/jobs.db", "/srv/jobs.db"),
        ("sqlite::memory:", ":memory:"),
        ("C:\\jobs\\jobs.db", "C:\\jobs\\jobs.db"),
        ("postgresql://db/app", None),
        ("redis+tls://cache/0", None),
    ],
)
def test_sqlite_path(target: str, path: str | None) -> None:
    """A path or sqlite: URL names a SQLite file; another scheme:// is another kind of store."""
    assert path == sqlite_path(target)


def test_sqlite_url_with_a_host_is_refused() -> None:
    """sqlite://host/path is not a file: the error shows how to write one."""
    with pytest.raises(ConfigurationError, match=r"sqlite:///path/to/jobs\.db"):
        sqlite_path("sqlite://host/jobs.db")


def test_paths_and_sqlite_urls_open_sqlite_stores(tmp_path: Path) -> None:
    """A path (str or PathLike) and a sqlite: URL open the same SQLite file."""
    path = tmp_path / "jobs.db"
    with open_store(path) as first:
        assert isinstance(first, SqliteJobStore)
        assert isinstance(first, JobStore)
        job_id = create_job(first, {"flow_id": "f", "routines": {"a": {}}}, "a")
    for target in (str(path), f"sqlite:{path}", f"sqlite://{path}"):
        with open_store(target) as again:
            assert [job_id] == [r.job_id for r in again.list_jobs()]


def test_url_opens_the_store_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SQLite store's url names its file absolutely, whatever the working directory."""
    monkeypatch.chdir(tmp_path)
    with SqliteJobStore("jobs.db") as store:
        job_id = create_job(store, {"flow_id": "f", "routines": {"a": {}}}, "a")
        assert f"sqlite:{tmp_path / 'jobs.db'}" == store.url
        url = store.url
    assert url is not None
    monkeypatch.chdir(tmp_path.parent)
    with open_store(url) as again:
        assert job_id == again.load_job(job_id).job_id
    assert not os.path.exists(tmp_path.parent / "jobs.db")


def test_in_memory_store_has_no_url() -> None:
    """No other process can open a private in-memory database."""
    with open_store(":memory:") as store:
        assert store.url is None


def test_other_schemes_come_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry point named by the scheme is loaded and called with the whole URL."""
    _only_entry_points(monkeypatch, _store_ep("echo", "builtins:str"))
    assert "echo://host/db?x=1" == open_store("echo://host/db?x=1")
    assert "ECHO://host" == open_store("ECHO://host")  # schemes are case-insensitive


def test_known_scheme_not_installed_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """postgresql:// without routilux-postgres: the error says what to install."""
    _only_entry_points(monkeypatch)
    for scheme in ("postgresql", "postgres"):
        with pytest.raises(ConfigurationError, match="pip install routilux-postgres") as info:
            open_store(f"{scheme}://user:secret@db/app")
        assert "secret" not in str(info.value)
        assert scheme == info.value.value


def test_unknown_scheme_names_it_and_the_installed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown scheme: the error names it, the installed schemes and the group."""
    _only_entry_points(monkeypatch, _store_ep("echo", "builtins:str"))
    with pytest.raises(ConfigurationError) as info:
        open_store("redis://cache/0")
    message = str(info.value)
    assert "'redis'" in message
    assert "installed: echo, sqlite" in message
    assert STORES_ENTRY_POINT_GROUP in message


def test_entry_point_that_cannot_be_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store package whose import fails: a ConfigurationError naming the entry point."""
    _only_entry_points(monkeypatch, _store_ep("postgresql", "routilux_no_such_module:Store"))
    with pytest.raises(ConfigurationError, match="reinstall routilux-postgres") as info:
        open_store("postgresql://db/app")
    assert "routilux_no_such_module:Store" in str(info.value)


def test_cli_store_option_takes_urls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--store takes sqlite: URLs; an unknown scheme is bad input (one line, exit 2)."""
    path = tmp_path / "jobs.db"
    SqliteJobStore(path).close()
    assert 0 == main(["jobs", "--store", f"sqlite:{path}"])
    assert "no jobs" in capsys.readouterr().out
    assert 2 == main(["jobs", "--store", f"sqlite:{tmp_path / 'missing.db'}"])
    assert "no job store at" in capsys.readouterr().err
    assert 2 == main(["jobs", "--store", "redis://cache/0"])
    err = capsys.readouterr().err
    assert 1 == len(err.strip().splitlines())
    assert err.startswith("routilux: error: no job store is installed for the URL scheme 'redis'")
