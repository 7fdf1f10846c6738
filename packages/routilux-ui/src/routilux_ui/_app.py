"""
The page application: ``create_app(store)`` builds the Starlette app over a job store.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from routilux.store import JobStore

from ._actions import Actions
from ._api import make_api
from ._context import UiContext, make_templates
from ._inbox import Inbox
from ._job_listing import JobIndex
from ._pages import make_pages
from ._security import Guard


__all__ = ["create_app"]

_STATIC = Path(__file__).parent / "static"


def create_app(
    store: JobStore,
    *,
    read_only: bool = False,
    token: str | None = None,
    poll_interval: float = 0.5,
    store_label: str = "",
    csrf_token: str | None = None,
) -> Starlette:
    """
    Return the ASGI application of the page over ``store`` (any :class:`~routilux.store.JobStore`).

    Args:
        store: The job store (not closed by the app).
        read_only: Refuse every POST (403) and show no buttons.
        token: The access token every request needs (``Authorization: Bearer``, or the
            cookie set by opening the page with ``?token=``); ``None``: localhost only.
        poll_interval: Seconds between two reads of the store for live updates.
        store_label: How the header names the store.
        csrf_token: The pages' CSRF token (random by default).

    The app's shutdown asks the jobs it runs to pause and waits for them to rest.
    """
    index = JobIndex(store, max_age=poll_interval)
    actions = Actions(store, index)
    csrf = csrf_token or secrets.token_urlsafe(32)
    ctx = UiContext(
        store=store,
        index=index,
        inbox=Inbox(store, index),
        actions=actions,
        templates=make_templates(),
        read_only=read_only,
        csrf_token=csrf,
        poll_interval=poll_interval,
        store_label=store_label,
    )
    api = make_api(ctx)
    pages = make_pages(ctx)
    routes = [
        Route("/", pages["jobs"]),
        Route("/inbox", pages["inbox"]),
        Route("/jobs/{rest:path}", pages["job"]),
        Route("/api/jobs", api["jobs"]),
        Route("/api/inbox", api["inbox"]),
        Route("/api/events", api["events"]),
        Route("/api/jobs/{rest:path}", api["job"], methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if request.url.path.startswith("/api/"):
            detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
            return JSONResponse({"error": str(detail)}, status_code=status)
        response: Response = pages["not_found"](request)
        response.status_code = status
        return response

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        actions.shutdown()

    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, token=token, read_only=read_only, csrf_token=csrf)],
        exception_handlers={HTTPException: not_found},
        lifespan=lifespan,
    )
    app.state.ui = ctx
    return app
