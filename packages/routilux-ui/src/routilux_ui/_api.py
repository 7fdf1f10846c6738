"""
The JSON API under ``/api``: the jobs, one job, its live events, the inbox, and the actions.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from routilux.exceptions import JobNotFoundError, JobStoreError
from routilux.lifecycle import Action

from ._actions import ActionError
from ._context import UiContext
from ._events import event_stream, job_changes, jobs_changes
from ._views import job_row


__all__ = ["api_error", "job_segments", "jobs_query", "make_api"]

_MAX_LIMIT = 500
_LIVE_KEYS = ("job_id", "status", "updated_at", "requested", "note", "actions", "routines", "dot")


def api_error(status: int, message: str) -> JSONResponse:
    """
    Return ``{"error": message}`` with ``status``.
    """
    return JSONResponse({"error": message}, status_code=status)


def job_segments(request: Request, prefix: str) -> list[str]:
    """
    Return the path segments after ``prefix``, each percent-decoded on its own (a job id
    written with ``%2F`` keeps its ``/``).
    """
    from urllib.parse import unquote

    raw = request.scope.get("raw_path") or request.url.path.encode()
    rest = raw.decode("latin-1").split("?", 1)[0][len(prefix) :]
    return [unquote(part) for part in rest.split("/")]


def jobs_query(request: Request) -> dict[str, Any]:
    """
    Return the filters of a jobs list request (``status``, ``flow``, ``q``, ``limit``,
    ``offset``).

    Raises:
        ValueError: ``limit`` or ``offset`` is not a whole number in range.
    """
    params = request.query_params
    try:
        limit = int(params.get("limit", "50"))
        offset = int(params.get("offset", "0"))
    except ValueError:
        msg = "limit and offset are whole numbers"
        raise ValueError(msg) from None
    if not 1 <= limit <= _MAX_LIMIT or offset < 0:
        msg = f"limit is 1 to {_MAX_LIMIT} and offset 0 or more, got {limit} and {offset}"
        raise ValueError(msg)
    return {
        "status": params.get("status") or None,
        "flow": params.get("flow") or None,
        "q": params.get("q") or None,
        "limit": limit,
        "offset": offset,
    }


def make_api(ctx: UiContext) -> dict[str, Any]:
    """
    Return the API's endpoints by name: ``jobs``, ``job`` (GET one job, its events, or POST
    an action), ``inbox`` and ``events``.
    """

    def jobs(request: Request) -> Response:
        try:
            query = jobs_query(request)
        except ValueError as exc:
            return api_error(400, str(exc))
        page = ctx.index.page(**query)
        return JSONResponse(
            {
                "jobs": [job_row(r, page.errors[r.job_id]) for r in page.records],
                "total": page.total,
                "counts": page.counts,
                "flows": list(page.flows),
                "limit": page.limit,
                "offset": page.offset,
            }
        )

    def inbox(request: Request) -> Response:
        return JSONResponse({"items": [q.as_json() for q in ctx.inbox.questions()]})

    async def events(request: Request) -> Response:
        return event_stream(jobs_changes(ctx.index, ctx.poll_interval, ctx.closing))

    async def job(request: Request) -> Response:
        parts = job_segments(request, "/api/jobs/")
        if not parts[0]:
            return api_error(404, "no job id in the address")
        job_id = parts[0]
        if request.method == "POST":
            if len(parts) != 2 or parts[1] not in ("pause", "resume", "cancel", "retry"):
                return api_error(404, "POST /api/jobs/ID/pause|resume|cancel|retry")
            return await _action(request, job_id, parts[1])
        if len(parts) == 1:
            return await run_in_threadpool(_detail, job_id)
        if parts[1:] == ["events"]:
            try:
                await run_in_threadpool(ctx.store.load_job, job_id)
            except JobNotFoundError as exc:
                return api_error(404, str(exc))
            except JobStoreError as exc:
                return api_error(500, str(exc))
            return event_stream(job_changes(lambda: _live(job_id), ctx.poll_interval, ctx.closing))
        return api_error(404, f"no such address: {request.url.path}")

    def _detail(job_id: str) -> Response:
        try:
            return JSONResponse(ctx.detail(job_id))
        except JobNotFoundError as exc:
            return api_error(404, str(exc))
        except JobStoreError as exc:
            return api_error(500, str(exc))

    def _live(job_id: str) -> dict[str, Any]:
        detail = ctx.detail(job_id)
        return {key: detail[key] for key in _LIVE_KEYS}

    async def _action(request: Request, job_id: str, verb: str) -> Response:
        values: dict[str, Any] = {}
        routine_id = None
        if verb == "resume":
            body = await request.body()
            try:
                values, routine_id = _resume_body(body)
            except ValueError as exc:
                return api_error(400, str(exc))
        try:
            if verb == "resume":
                result = await run_in_threadpool(ctx.actions.resume, job_id, values, routine_id)
            elif verb == "retry":
                result = await run_in_threadpool(ctx.actions.retry, job_id)
            else:
                result = await run_in_threadpool(ctx.actions.control, job_id, Action(verb))
        except JobNotFoundError as exc:
            return api_error(404, str(exc))
        except ActionError as exc:
            return api_error(exc.status_code, str(exc))
        except JobStoreError as exc:
            return api_error(500, str(exc))
        return JSONResponse(result, status_code=202)

    return {"jobs": jobs, "job": job, "inbox": inbox, "events": events}


def _resume_body(body: bytes) -> tuple[dict[str, Any], str | None]:
    # ``{"values": {...}, "routine_id": "..."}``, both optional; an empty body resumes as is.
    if not body.strip():
        return {}, None
    try:
        data = json.loads(body)
    except ValueError:
        msg = 'the body of resume is JSON: {"values": {"answer": "yes"}}'
        raise ValueError(msg) from None
    if not isinstance(data, dict) or not set(data) <= {"values", "routine_id"}:
        msg = 'the body of resume is {"values": {...}, "routine_id": "..."} (both optional)'
        raise ValueError(msg)
    values = data.get("values") or {}
    routine_id = data.get("routine_id")
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and k.isidentifier() for k in values
    ):
        msg = '"values" maps answer names (identifiers) to values'
        raise ValueError(msg)
    if routine_id is not None and not isinstance(routine_id, str):
        msg = '"routine_id" is a string'
        raise ValueError(msg)
    return values, routine_id
