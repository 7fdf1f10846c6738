"""
The HTML pages: the jobs (``/``), one job (``/jobs/{id}``) and the inbox (``/inbox``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from routilux.exceptions import JobNotFoundError, JobStoreError

from ._api import job_segments, jobs_query
from ._context import UiContext
from ._views import STATUSES, job_row, timeline


__all__ = ["make_pages"]


def make_pages(ctx: UiContext) -> dict[str, Any]:
    """
    Return the page endpoints by name: ``jobs``, ``job``, ``inbox`` and ``not_found``.
    """

    def render(request: Request, name: str, status_code: int = 200, **values: Any) -> Response:
        template = ctx.templates.get_template(name)
        html = template.render(
            request_path=request.url.path,
            csrf_token=ctx.csrf_token,
            read_only=ctx.read_only,
            store_label=ctx.store_label,
            **values,
        )
        return HTMLResponse(html, status_code=status_code)

    def problem(request: Request, status_code: int, message: str) -> Response:
        return render(request, "problem.html", status_code, message=message, inbox_count=None)

    def jobs(request: Request) -> Response:
        try:
            query = jobs_query(request)
        except ValueError as exc:
            return problem(request, 400, str(exc))
        page = ctx.index.page(**query)
        rows = [job_row(r, page.errors[r.job_id]) for r in page.records]
        kept = {k: v for k, v in query.items() if v and k not in ("offset", "limit")}

        def page_url(offset: int) -> str:
            return "/?" + urlencode({**kept, "limit": page.limit, "offset": offset})

        values: dict[str, Any] = {
            "rows": rows,
            "page": page,
            "query": query,
            "statuses": [s for s in STATUSES if s in page.counts]
            + sorted(s for s in page.counts if s not in STATUSES),
            "all_count": sum(page.counts.values()),
            "prev_url": page_url(max(0, page.offset - page.limit)) if page.offset else None,
            "next_url": page_url(page.offset + page.limit)
            if page.offset + page.limit < page.total
            else None,
        }
        return render(request, "jobs.html", inbox_count=len(ctx.inbox.questions()), **values)

    def job(request: Request) -> Response:
        parts = job_segments(request, "/jobs/")
        if len(parts) != 1 or not parts[0]:
            return problem(request, 404, f"no such page: {request.url.path}")
        try:
            detail = ctx.detail(parts[0])
        except JobNotFoundError as exc:
            return problem(request, 404, str(exc))
        except JobStoreError as exc:
            return problem(request, 500, str(exc))
        return render(
            request,
            "job.html",
            inbox_count=len(ctx.inbox.questions()),
            job=detail,
            timeline=timeline(detail),
        )

    def inbox(request: Request) -> Response:
        questions = ctx.inbox.questions()
        return render(request, "inbox.html", questions=questions, inbox_count=len(questions))

    def not_found(request: Request) -> Response:
        return problem(request, 404, f"no such page: {request.url.path}")

    return {"jobs": jobs, "job": job, "inbox": inbox, "not_found": not_found}
