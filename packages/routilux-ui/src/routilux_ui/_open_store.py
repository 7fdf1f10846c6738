"""
Adapter: open a job store from a ``--store`` value (a SQLite path or a PostgreSQL URL).

Core opens stores this way inside its command (a private function);
``routilux.store.open_store(url)`` and the ``routilux.stores`` entry-point group are to
replace this module.
"""

from __future__ import annotations

import os

from routilux.store import JobStore, SqliteJobStore


__all__ = ["StoreUrlError", "open_store"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreUrlError(ValueError):
    """
    A ``--store`` value that names no usable store (the message says why, in one line).
    """


def open_store(url: str) -> JobStore:
    """
    Open the job store ``url`` names: a ``postgresql://`` URL (with routilux-postgres, or the
    ``postgres`` extra of routilux-core, installed) or the path of an existing SQLite file.

    Raises:
        StoreUrlError: No store is there, or its package is not installed.
        JobStoreError: The file is not a usable job store.
    """
    if url.startswith(_POSTGRES_SCHEMES):
        try:
            from routilux.postgres import PostgresJobStore
        except ImportError:
            msg = f"{_POSTGRES_SCHEMES[0]} stores need: pip install 'routilux-core[postgres]'"
            raise StoreUrlError(msg) from None
        return PostgresJobStore(url)
    if url != ":memory:" and not os.path.exists(url):
        msg = f"no job store at {url!r} (run a flow first, or pass --store)"
        raise StoreUrlError(msg)
    return SqliteJobStore(url)
