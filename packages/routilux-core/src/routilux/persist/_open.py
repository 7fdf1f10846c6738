"""
open_store: a job store from its URL or path, SQLite here and other kinds through entry points.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routilux.exceptions import ConfigurationError
from routilux.persist._sqlite import SqliteJobStore


if TYPE_CHECKING:
    from routilux.persist._protocols import JobStore


__all__ = ["STORES_ENTRY_POINT_GROUP", "open_store", "sqlite_path"]

STORES_ENTRY_POINT_GROUP = "routilux.stores"
"""
The entry-point group of job store kinds, by URL scheme: ``postgresql =
"routilux_postgres:PostgresJobStore"`` names a callable that takes the URL and returns the
:class:`~routilux.store.JobStore`.
"""

_KNOWN_STORES = {"postgresql": "routilux-postgres", "postgres": "routilux-postgres"}
"""The URL schemes of routilux's own store packages, and the distribution that provides each."""

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def sqlite_path(url_or_path: str | os.PathLike[str]) -> str | None:
    """
    Return the SQLite file (or ``":memory:"``) that ``url_or_path`` names, or ``None`` when
    it is the URL of another kind of store.

    A path, ``sqlite:PATH`` and ``sqlite:///ABSOLUTE/PATH`` name a SQLite file, and
    ``sqlite::memory:`` a private in-memory database; a string that starts with another
    ``scheme://`` is a URL. A Windows path such as ``C:\\jobs.db`` is a path.

    Raises:
        ConfigurationError: A ``sqlite://`` URL with a host (``sqlite://host/jobs.db``).

    .. versionadded:: 0.10
    """
    text = os.fspath(url_or_path)
    if not isinstance(url_or_path, str):
        return text
    if text[:7].lower() == "sqlite:":
        path = text[7:]
        if path.startswith("//"):
            path = path[2:]
            if not path.startswith("/"):
                msg = (
                    "a sqlite:// URL takes an absolute path (sqlite:///path/to/jobs.db); "
                    f"write sqlite:{path} for a relative one"
                )
                raise ConfigurationError(msg, name="url", value=text)
        return path
    return None if _SCHEME.match(text) else text


def open_store(url_or_path: str | os.PathLike[str], **settings: Any) -> JobStore:
    """
    Open the job store that ``url_or_path`` names: a path or ``sqlite:`` URL (see
    :func:`sqlite_path`) is a :class:`~routilux.store.SqliteJobStore`; any other
    ``scheme://`` URL is opened by the entry point named ``scheme`` in the
    ``routilux.stores`` group (:data:`STORES_ENTRY_POINT_GROUP`), loaded only then:
    routilux-postgres declares ``postgresql`` and ``postgres``. A store's
    :attr:`~routilux.store.JobStore.url` is what this opens it from again. ``settings``
    are passed to the store's constructor as keywords (the SQL stores take
    ``keep_checkpoints``).

    Raises:
        ConfigurationError: The URL's scheme is not installed: for a known one, the message
            names the package to install; for another, the scheme and the installed ones.
        JobStoreError: The store cannot be opened (a path that is not a SQLite job store, an
            unreachable database).

    Example:
        >>> store = open_store(":memory:")
        >>> store.list_jobs()
        []

    .. versionadded:: 0.10
    """
    path = sqlite_path(url_or_path)
    if path is not None:
        return SqliteJobStore(path, **settings)
    url = str(url_or_path)
    scheme = url[: url.index("://")].lower()
    return _store_factory(scheme)(url, **settings)


def _store_factory(scheme: str) -> Callable[..., JobStore]:
    # The store kind of ``scheme``'s entry point, loaded now (it may import a database driver).
    from importlib.metadata import entry_points

    package = _KNOWN_STORES.get(scheme)
    for ep in entry_points(group=STORES_ENTRY_POINT_GROUP, name=scheme):
        try:
            factory: Callable[..., JobStore] = ep.load()
        except ImportError as exc:
            needs = f"; reinstall {package}" if package else ""
            msg = f"the {scheme}:// job store ({ep.value}) cannot be imported: {exc}{needs}"
            raise ConfigurationError(msg, name="url", value=scheme) from exc
        return factory
    if package is not None:
        msg = (
            f"{scheme}:// job stores need the {package} package: pip install {package} "
            f"(or routilux-core[{package.removeprefix('routilux-')}])"
        )
        raise ConfigurationError(msg, name="url", value=scheme)
    installed = sorted(
        {"sqlite", *(ep.name for ep in entry_points(group=STORES_ENTRY_POINT_GROUP))}
    )
    msg = (
        f"no job store is installed for the URL scheme {scheme!r} (installed: "
        f"{', '.join(installed)}; packages add others through the "
        f"{STORES_ENTRY_POINT_GROUP!r} entry-point group)"
    )
    raise ConfigurationError(msg, name="url", value=scheme)
