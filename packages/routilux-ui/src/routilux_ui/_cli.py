"""
The ``routilux ui`` subcommand, registered through the ``routilux.commands`` entry point.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
from types import FrameType
from urllib.parse import quote

import uvicorn

from routilux.cli import DEFAULT_STORE, EXIT_BAD_INPUT, EXIT_COMPLETED
from routilux.exceptions import ConfigurationError, JobStoreError
from routilux.store import open_store, sqlite_path

from ._security import is_loopback


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "TOKEN_ENV", "register"]

DEFAULT_HOST = "127.0.0.1"
"""Where the page listens unless ``--host`` says otherwise: this machine only."""

DEFAULT_PORT = 8237
"""The page's default port."""

TOKEN_ENV = "ROUTILUX_UI_TOKEN"
"""The environment variable read for the token when ``--token`` is not given (so that it
is not in the process list)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """
    Add ``routilux ui`` to the ``routilux`` command's subcommands.
    """
    p = subparsers.add_parser(
        "ui",
        help="serve the web page of a job store's jobs and human tasks",
        description="Serve the web page of a job store: the jobs, each job's flow and state, "
        "and the inbox of questions waiting for a person. Prints its address; opens nothing.",
    )
    p.add_argument(
        "--store",
        metavar="PATH|URL",
        help=f"a SQLite file or a postgresql:// URL (default: $ROUTILUX_STORE or {DEFAULT_STORE})",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--read-only", action="store_true", help="show, but refuse every action")
    p.add_argument(
        "--token",
        help=f"the access token every request needs (default: ${TOKEN_ENV}); "
        "required to bind another address than this machine's",
    )
    p.add_argument(
        "--import",
        dest="imports",
        metavar="MODULE",
        action="append",
        help="a module to import first, so that it registers its routines (repeatable)",
    )
    p.set_defaults(func=_cmd_ui)


class _Server(uvicorn.Server):
    # Ends the page's event streams as soon as Ctrl-C or SIGTERM stops the server.
    def __init__(self, config: uvicorn.Config, closing: threading.Event) -> None:
        super().__init__(config)
        self._closing = closing

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._closing.set()
        super().handle_exit(sig, frame)


def _fail(message: str) -> int:
    print(f"routilux: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _cmd_ui(args: argparse.Namespace) -> int:
    from ._app import create_app

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and token is None:
        return _fail(
            f"--host {args.host} makes the page reachable from other machines: give --token"
        )
    if not 0 < args.port < 65536:
        return _fail(f"--port must be 1 to 65535, got {args.port}")
    for name in args.imports or ():
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001  # whatever the module raises is bad input
            return _fail(f"--import {name}: {type(exc).__name__}: {exc}")
    url = args.store or os.environ.get("ROUTILUX_STORE") or DEFAULT_STORE
    path = sqlite_path(url)
    if path is not None and path != ":memory:" and not os.path.exists(path):
        return _fail(f"no job store at {url!r} (run a flow first, or pass --store)")
    try:
        store = open_store(url)
    except (ConfigurationError, JobStoreError) as exc:
        return _fail(str(exc))
    try:
        app = create_app(store, read_only=args.read_only, token=token, store_label=url)
        shown = f"[{args.host}]" if ":" in args.host else args.host
        address = f"http://{shown}:{args.port}/" + (f"?token={quote(token)}" if token else "")
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            ws="none",
            # Live pages keep their event streams open: they end when the server stops
            # (see _Server), and are not waited for longer than 3 s.
            timeout_graceful_shutdown=3,
        )
        server = _Server(config, app.state.ui.closing)
        print(f"routilux ui: {address}  (store {url}; Ctrl-C stops)", flush=True)
        server.run()
    finally:
        store.close()
    return EXIT_COMPLETED
