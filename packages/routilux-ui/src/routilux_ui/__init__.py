"""
``routilux ui``: the web page of a job store's jobs and of the human tasks waiting in them.

Starlette, Jinja2, htmx and Graphviz in WebAssembly, all served from this package.

:func:`create_app` builds the ASGI application over any ``JobStore``; the ``routilux ui``
command (the ``routilux.commands`` entry point ``ui``) serves it with uvicorn.
"""

from __future__ import annotations

from typing import Any

from ._app import create_app


__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from ._version import __version__

        return __version__
    msg = f"module 'routilux_ui' has no attribute {name!r}"
    raise AttributeError(msg)
