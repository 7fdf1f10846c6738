"""
routilux-dask as a distribution: its public API, the store its workers re-open, and the
deprecated ``routilux.dask_executor`` re-export.
"""

from __future__ import annotations

import pytest
from helpers import check_all, check_moved_module


pytest.importorskip("routilux_dask", reason="routilux-dask is not installed")

import routilux_dask
from routilux.exceptions import ConfigurationError
from routilux.store import SqliteJobStore


def test_public_api() -> None:
    """routilux_dask lists exactly its public names; they import."""
    check_all("routilux_dask")
    assert routilux_dask.__version__.count(".") == 2


def test_deprecated_routilux_dask_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing routilux.dask_executor warns, naming the new import, and gives the same names."""
    check_moved_module("routilux.dask_executor", "routilux_dask", monkeypatch)


def test_store_without_url_is_refused() -> None:
    """The workers re-open the store from its url: a store without one is refused at once."""
    with SqliteJobStore(":memory:") as store, pytest.raises(ConfigurationError) as info:
        routilux_dask.DaskJobExecutor(None, store)
    assert "cannot be reached from Dask workers" in str(info.value)
