"""
The HTML pages (escaping, buttons, 404s), the event streams, and the ``routilux ui`` command.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from urllib.parse import quote

import httpx
import pytest
from conftest import LiveServer
from starlette.testclient import TestClient
from ui_routines import EVIL, approval_job, evil_job, failed_job, wait_status

from routilux.cli import main
from routilux.graph import STATE_STYLES
from routilux.store import SqliteJobStore


class TestPages:
    def test_jobs_page(self, client: TestClient, store: SqliteJobStore) -> None:
        """The jobs page lists the jobs with their status and counts them per status."""
        job = approval_job(store)
        failed_job(store)
        html = client.get("/").text
        assert f'href="/jobs/{job}"' in html
        assert 'class="chip s-paused' in html and 'class="chip s-failed' in html
        assert 'data-live-job="' + job + '">paused<' in html
        filtered = client.get("/?status=failed").text
        assert f'href="/jobs/{job}"' not in filtered

    def test_job_page_shows_what_the_lifecycle_allows(
        self, client: TestClient, store: SqliteJobStore
    ) -> None:
        """A paused job offers resume and cancel; a failed one only retry, and shows its
        error with the traceback; a completed one offers nothing."""
        paused = client.get(f"/jobs/{approval_job(store)}").text
        assert {"resume", "cancel"} == _buttons(paused)
        assert "Approve 120 EUR for ana (train ticket)? yes/no" in paused
        failed = client.get(f"/jobs/{failed_job(store)}").text
        assert {"retry"} == _buttons(failed)
        assert "Traceback (most recent call last)" in failed
        assert "RuntimeError" in failed
        assert set() == _buttons(client.get(f"/jobs/{evil_job(store)}").text)

    def test_inbox_page(self, client: TestClient, store: SqliteJobStore) -> None:
        """The inbox shows the question first, its data, and a form with the choices."""
        job = approval_job(store)
        html = client.get("/inbox").text
        assert html.index("Approve 120 EUR") < html.index(f'<a class="id" href="/jobs/{job}"')
        assert 'value="yes"' in html and 'value="no"' in html
        assert f'data-resume-url="/api/jobs/{job}/resume"' in html

    def test_values_from_a_job_are_text(self, client: TestClient, store: SqliteJobStore) -> None:
        """Markup in ids, data, outputs and error text is shown escaped, never as markup."""
        job = evil_job(store)
        failed_job(store)
        pages = [client.get("/").text, client.get(f"/jobs/{quote(job, safe='')}").text]
        for html in pages:
            for evil in EVIL:
                assert evil not in html
        detail = pages[1]
        assert "&lt;script&gt;alert(" in detail
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in detail
        failed = client.get(
            f"/jobs/{client.get('/api/jobs?flow=ui-boom').json()['jobs'][0]['job_id']}"
        )
        assert "&lt;b&gt;today&lt;/b&gt;" in failed.text
        assert "<b>today</b>" not in failed.text

    def test_markup_in_a_question_is_text(self, client: TestClient, store: SqliteJobStore) -> None:
        """A question built from data with markup is escaped in the inbox too."""
        approval_job(store, job_id=EVIL[1])
        html = client.get("/inbox").text
        assert EVIL[1] not in html
        assert quote(EVIL[1], safe="") in html

    @pytest.mark.parametrize(
        "path", ["/jobs/nope", "/jobs/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/nothing"]
    )
    def test_404_pages(self, client: TestClient, path: str) -> None:
        """An unknown job or address is a 404 page with one line, never a traceback."""
        response = client.get(path)
        assert 404 == response.status_code
        assert "Traceback" not in response.text
        assert "<script>alert(1)" not in response.text

    def test_static_files_are_served_from_the_package(self, client: TestClient) -> None:
        """htmx and the graph renderer come from the wheel, with their licences."""
        for name in ("htmx.min.js", "viz-global.js", "htmx.LICENSE", "graphviz.LICENSE"):
            assert 200 == client.get(f"/static/vendor/{name}").status_code
        assert "https://" not in client.get("/").text


def _buttons(html: str) -> set[str]:
    return {part.split('"', 1)[0] for part in html.split('data-action="')[1:]}


def _events(url: str, count: int) -> list[tuple[str, object]]:
    # Read ``count`` server-sent events from ``url`` (a real server), then hang up.
    out: list[tuple[str, object]] = []
    with httpx.stream("GET", url, timeout=10) as response:
        assert "text/event-stream" in response.headers["content-type"]
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                out.append((name, json.loads(line[6:])))
                if len(out) == count:
                    break
    return out


class TestEvents:
    def test_job_events_follow_the_job(self, live: LiveServer, store: SqliteJobStore) -> None:
        """The job's stream sends its state at once, then again when it changes."""
        job = approval_job(store)
        url = f"{live.url}/api/jobs/{job}/events"
        with httpx.stream("GET", url, timeout=10) as response:
            lines = response.iter_lines()
            first = _next_event(lines)
            assert ("job", "paused") == (first[0], first[1]["status"])
            assert {"ask": "waiting", "decide": "idle"} == {
                r["routine_id"]: r["state"] for r in first[1]["routines"]
            }
            httpx.post(
                f"{live.url}/api/jobs/{job}/resume",
                json={"values": {"answer": "yes"}},
                headers={"x-csrf-token": live.csrf},
            ).raise_for_status()
            statuses = [first[1]["status"]]
            while statuses[-1] != "completed":
                statuses.append(_next_event(lines)[1]["status"])
        assert "completed" == wait_status(store, job, "completed")

    def test_all_jobs_events(self, live: LiveServer, store: SqliteJobStore) -> None:
        """The store's stream names each job that changes, with the counts per status."""
        url = f"{live.url}/api/events"
        with httpx.stream("GET", url, timeout=10) as response:
            lines = response.iter_lines()
            assert ("jobs", []) == (lambda e: (e[0], e[1]["changed"]))(_next_event(lines))
            job = approval_job(store)
            seen: dict[str, str] = {}
            while seen.get(job) != "paused":
                name, data = _next_event(lines)
                assert "jobs" == name
                seen.update({row["job_id"]: row["status"] for row in data["changed"]})
            assert 1 == data["counts"]["paused"]

    def test_unknown_job_events(self, live: LiveServer) -> None:
        """The stream of an unknown job is a 404 at once."""
        assert 404 == httpx.get(f"{live.url}/api/jobs/nope/events").status_code


def _next_event(lines: object) -> tuple[str, dict[str, object]]:
    name = None
    for line in lines:  # type: ignore[attr-defined]
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name:
            return name, json.loads(line[6:])
    raise AssertionError("the stream ended")


class TestCommand:
    def test_another_host_needs_a_token(
        self, store: SqliteJobStore, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Binding another address than loopback without --token is refused (exit 2)."""
        assert 2 == main(["ui", "--store", store.path, "--host", "0.0.0.0"])
        assert "give --token" in capsys.readouterr().err

    def test_missing_store(self, tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
        """A store file that does not exist is one line, exit 2."""
        assert 2 == main(["ui", "--store", f"{tmp_path}/none.db"])
        assert "no job store at" in capsys.readouterr().err

    def test_bad_import(self, store: SqliteJobStore, capsys: pytest.CaptureFixture[str]) -> None:
        """An --import that fails is bad input."""
        assert 2 == main(["ui", "--store", store.path, "--import", "no_such_module_here"])
        assert "--import no_such_module_here" in capsys.readouterr().err


def test_a_sparse_checkpoint_still_renders(client: TestClient, store: SqliteJobStore) -> None:
    """A checkpoint missing the fields the page shows (another writer's) renders, not a 500."""
    job = approval_job(store)
    sparse = {
        "status": "paused",
        "checkpoint_seq": 99,
        "errors": [{"message": "lost"}, "not a dict"],
        "pending_tasks": [{"data": {}}],
        "failed_tasks": [{}],
        "pause_points": [{}],
        "output_log": [{}],
        "execution_history": [{}],
        "routine_states": {"ask": "not a dict"},
    }
    assert store.save_checkpoint(job, sparse)
    response = client.get(f"/jobs/{job}")
    assert 200 == response.status_code
    assert "lost" in response.text


class TestStateColours:
    def test_legend_and_picture_share_core_colours(self) -> None:
        """The legend's swatches have the colours routilux.graph draws the boxes with, so the
        page's legend, its picture and `routilux graph --job` agree."""
        css = (files("routilux_ui") / "static" / "app.css").read_text(encoding="utf-8")
        found = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-f]{6})", css))
        # The style sheet's variable of each routine state (the legend's swatches).
        variables = {
            "idle": "idle",
            "running": "run",
            "completed": "ok",
            "failed": "bad",
            "waiting": "wait",
        }
        assert {state: (style.stroke, style.fill) for state, style in STATE_STYLES.items()} == {
            state: (found[v], found[f"{v}-bg"]) for state, v in variables.items()
        }

    def test_job_picture_colours_each_box(self, client: TestClient, store: SqliteJobStore) -> None:
        """The job's DOT fills the waiting box amber and the one not run grey."""
        dot = client.get(f"/api/jobs/{approval_job(store)}").json()["dot"]
        for rid, state in (("ask", "waiting"), ("decide", "idle")):
            line = next(x for x in dot.splitlines() if x.strip().startswith(f'"{rid}" ['))
            assert f'fillcolor="{STATE_STYLES[state].fill}"' in line
            assert f'class="routine st-{state}"' in line
