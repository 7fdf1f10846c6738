"""
The JSON API of routilux-ui (every route and status code), with Starlette's TestClient.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from conftest import BASE, CSRF
from starlette.testclient import TestClient
from ui_routines import RunningJob, approval_job, evil_job, failed_job, wait_status

from routilux.store import SqliteJobStore


class TestJobsList:
    def test_rows_newest_first_with_counts_and_errors(
        self, client: TestClient, store: SqliteJobStore
    ) -> None:
        """Every row has its status, flow, entry, times and error count; counts per status."""
        first = approval_job(store)
        failed = failed_job(store)
        body = client.get("/api/jobs").json()
        assert [failed, first] == [row["job_id"] for row in body["jobs"]]
        assert {"paused": 1, "failed": 1} == body["counts"]
        assert 2 == body["total"]
        row = body["jobs"][0]
        assert ("failed", "ui-boom", "boom", 1) == (
            row["status"],
            row["flow_id"],
            row["entry_routine_id"],
            row["errors"],
        )
        assert row["created_at"] <= row["updated_at"]
        assert 0 == body["jobs"][1]["errors"]

    def test_filters_and_paging(self, client: TestClient, store: SqliteJobStore) -> None:
        """status, flow and q (an id prefix) filter; limit and offset page."""
        ids = [approval_job(store, job_id=f"job-{i}") for i in range(3)]
        failed_job(store)
        assert ids[::-1] == [
            r["job_id"] for r in client.get("/api/jobs?status=paused").json()["jobs"]
        ]
        by_flow = client.get("/api/jobs?flow=ui-boom").json()
        assert (1, ["ui-boom"]) == (by_flow["total"], [r["flow_id"] for r in by_flow["jobs"]])
        assert ["job-1"] == [r["job_id"] for r in client.get("/api/jobs?q=job-1").json()["jobs"]]
        page = client.get("/api/jobs?status=paused&limit=2&offset=2").json()
        assert (["job-0"], 3, 2, 2) == (
            [r["job_id"] for r in page["jobs"]],
            page["total"],
            page["limit"],
            page["offset"],
        )

    @pytest.mark.parametrize("query", ["limit=0", "limit=x", "offset=-1", "limit=100000"])
    def test_bad_paging_is_400(self, client: TestClient, query: str) -> None:
        """A limit or offset out of range is refused with a message."""
        response = client.get(f"/api/jobs?{query}")
        assert 400 == response.status_code
        assert "limit" in response.json()["error"]


class TestOneJob:
    def test_detail(self, client: TestClient, store: SqliteJobStore) -> None:
        """The detail has the job, its routines' states, history, tasks and checkpoints."""
        job = approval_job(store)
        body = client.get(f"/api/jobs/{job}").json()
        assert (job, "expense-approval", "paused", []) == (
            body["job_id"],
            body["flow_id"],
            body["status"],
            body["errors"],
        )
        assert {"ask": "waiting", "decide": "idle"} == {
            r["routine_id"]: r["state"] for r in body["routines"]
        }
        assert ["ask"] == [q["routine_id"] for q in body["waiting"]]
        assert {"pause": False, "resume": True, "cancel": True, "retry": False} == body["actions"]
        assert body["checkpoint_seq"] >= 1
        assert 1 == len(body["pause_points"])
        assert [] == body["pending_tasks"] == body["failed_tasks"]
        assert 'class="routine st-waiting"' in body["dot"]

    def test_errors_carry_their_traceback(self, client: TestClient, store: SqliteJobStore) -> None:
        """A failed job's errors have every field, the traceback too, and retry is offered."""
        body = client.get(f"/api/jobs/{failed_job(store)}").json()
        (error,) = body["errors"]
        assert ("boom", "RuntimeError", "stop") == (
            error["routine_id"],
            error["error_type"],
            error["strategy"],
        )
        assert "Traceback" in error["traceback"]
        assert 1 == len(body["failed_tasks"])
        assert {"pause": False, "resume": False, "cancel": False, "retry": True} == body["actions"]
        assert {"boom": "failed"} == {r["routine_id"]: r["state"] for r in body["routines"]}

    @pytest.mark.parametrize(
        "path",
        ["/api/jobs/nope", "/api/jobs/nope/events", "/api/jobs/%3Cscript%3E", "/api/jobs/a%2Fb"],
    )
    def test_unknown_job_is_404_with_a_message(self, client: TestClient, path: str) -> None:
        """A bad id gets 404 and one line naming it, never a traceback."""
        response = client.get(path)
        assert 404 == response.status_code
        assert "no job" in response.json()["error"]
        assert "Traceback" not in response.text

    def test_unknown_address_is_404(self, client: TestClient, store: SqliteJobStore) -> None:
        """An address under a job that is not one of the API's is 404."""
        job = approval_job(store)
        assert 404 == client.get(f"/api/jobs/{job}/nothing").status_code
        assert 404 == client.post(f"/api/jobs/{job}/explode").status_code
        assert 404 == client.get("/api/nothing").status_code


class TestInbox:
    def test_lists_waiting_questions(self, client: TestClient, store: SqliteJobStore) -> None:
        """Each paused HumanInput question: job, routine, question, data, choices."""
        job = approval_job(store)
        failed_job(store)
        (item,) = client.get("/api/inbox").json()["items"]
        assert (job, "ask", "Approve 120 EUR for ana (train ticket)? yes/no") == (
            item["job_id"],
            item["routine_id"],
            item["question"],
        )
        assert {"amount": 120, "employee": "ana", "reason": "train ticket"} == item["data"]
        assert (["answer"], ["yes", "no"]) == (item["fields"], item["options"])

    def test_answer_resumes_in_the_background(
        self, client: TestClient, store: SqliteJobStore
    ) -> None:
        """POST resume with values answers, returns 202 at once, and the job completes."""
        job = approval_job(store)
        response = client.post(f"/api/jobs/{job}/resume", json={"values": {"answer": "yes"}})
        assert 202 == response.status_code
        body = response.json()
        assert (job, "resume") == (body["job_id"], body["action"])
        # The answer comes once the run claimed the job: it runs, or finished already.
        assert body["status"] in ("running", "completed")
        assert "completed" == wait_status(store, job, "completed")
        state = store.load_job(job).state or {}
        assert "approved" in {h["event_name"] for h in state["execution_history"]}
        assert [] == client.get("/api/inbox").json()["items"]

    @pytest.mark.parametrize(
        ("body", "status", "words"),
        [
            (b"not json", 400, "JSON"),
            (b'{"values": [1]}', 400, "values"),
            (b'{"values": {"1a": 2}}', 400, "values"),
            (b'{"values": {"answer": "y"}, "x": 1}', 400, "routine_id"),
            (b'{"values": {"answer": "y"}, "routine_id": "decide"}', 409, "waits for no input"),
        ],
    )
    def test_bad_resume_bodies(
        self, client: TestClient, store: SqliteJobStore, body: bytes, status: int, words: str
    ) -> None:
        """A malformed body is 400; a routine that waits for nothing is 409; nothing runs."""
        job = approval_job(store)
        response = client.post(
            f"/api/jobs/{job}/resume", content=body, headers={"content-type": "application/json"}
        )
        assert status == response.status_code
        assert words in response.json()["error"]
        assert "paused" == store.load_job(job).status


class TestLifecycle:
    @pytest.mark.parametrize(
        ("make", "action", "words"),
        [
            (evil_job, "cancel", "is completed; nothing to cancel"),
            (evil_job, "pause", "is completed; nothing to pause"),
            (evil_job, "resume", "is completed; nothing to resume"),
            (evil_job, "retry", "only a failed job can be retried"),
            (approval_job, "retry", "only a failed job can be retried"),
            (failed_job, "resume", "retry"),
            (failed_job, "cancel", "cannot cancel"),
            (failed_job, "pause", "cannot pause"),
        ],
    )
    def test_refusals_are_409_with_the_lifecycle_message(
        self, client: TestClient, store: SqliteJobStore, make: object, action: str, words: str
    ) -> None:
        """What the lifecycle table (or the command) refuses is 409 with its message."""
        job = make(store)  # type: ignore[operator]
        before = store.load_job(job).status
        response = client.post(f"/api/jobs/{job}/{action}")
        assert 409 == response.status_code
        assert words in response.json()["error"]
        assert before == store.load_job(job).status

    def test_cancel_paused_then_everything_is_refused(
        self, client: TestClient, store: SqliteJobStore
    ) -> None:
        """Cancel of a paused job is at once; a cancelled job refuses all four actions."""
        job = approval_job(store)
        response = client.post(f"/api/jobs/{job}/cancel")
        assert (202, "cancelled") == (response.status_code, response.json()["status"])
        assert "cancelled" == store.load_job(job).status
        for action in ("pause", "resume", "retry"):
            refused = client.post(f"/api/jobs/{job}/{action}")
            assert 409 == refused.status_code
            assert "a cancelled job is final" in refused.json()["error"]

    def test_retry_runs_a_failed_job_again(self, client: TestClient, store: SqliteJobStore) -> None:
        """Retry of a failed job is 202; its run fails again and records a second error."""
        job = failed_job(store)
        assert 202 == client.post(f"/api/jobs/{job}/retry").status_code
        deadline = time.monotonic() + 10
        while len((store.load_job(job).state or {})["errors"]) < 2:
            assert time.monotonic() < deadline, "the retry did not run"
            store.wait_settled(job, 0.05)
        assert "failed" == wait_status(store, job, "failed")

    def test_pause_and_cancel_of_a_running_job_are_requests(
        self, client: TestClient, store: SqliteJobStore
    ) -> None:
        """A running job is asked to pause (its runner stops at the next step), then resumed
        and cancelled the same way."""
        running = RunningJob(store)
        try:
            paused = client.post(f"/api/jobs/{running.job_id}/pause").json()
            assert ("running", "pause") == (paused["status"], paused["requested"])
            assert "paused" == store.wait_settled(running.job_id, 10)
            running.thread.join(10)
            assert 202 == client.post(f"/api/jobs/{running.job_id}/resume").status_code
            twice = client.post(f"/api/jobs/{running.job_id}/resume")
            assert 409 == twice.status_code
            assert "is running" in twice.json()["error"]
            assert "running" == wait_status(store, running.job_id, "running")
            cancel = client.post(f"/api/jobs/{running.job_id}/cancel")
            assert 202 == cancel.status_code
            assert "cancelled" == wait_status(store, running.job_id, "cancelled")
        finally:
            running.stop()


class TestSecurity:
    def test_post_needs_the_csrf_token(self, store: SqliteJobStore) -> None:
        """Without the page's CSRF token (or with a wrong one) a POST is 403; nothing runs."""
        job = approval_job(store)
        with TestClient(create_app_for(store), base_url=BASE) as bare:
            for headers in ({}, {"x-csrf-token": "guess"}):
                response = bare.post(f"/api/jobs/{job}/cancel", headers=headers)
                assert 403 == response.status_code
                assert "CSRF" in response.json()["error"]
            other_site = bare.post(
                f"/api/jobs/{job}/cancel",
                headers={"x-csrf-token": CSRF, "origin": "http://evil.example"},
            )
            assert 403 == other_site.status_code
        assert "paused" == store.load_job(job).status

    def test_only_loopback_names_without_a_token(self, store: SqliteJobStore) -> None:
        """A request addressed to another name (DNS rebinding) is refused without a token."""
        with TestClient(create_app_for(store), base_url="http://evil.example") as c:
            response = c.get("/api/jobs")
            assert 403 == response.status_code
            assert "127.0.0.1" in response.json()["error"]
        with TestClient(create_app_for(store), base_url="http://localhost:8237") as c:
            assert 200 == c.get("/api/jobs").status_code

    def test_token(self, store: SqliteJobStore) -> None:
        """With a token every request needs it: bearer for scripts, a cookie for browsers."""
        job = approval_job(store)
        app = create_app_for(store, token="s3cret")
        with TestClient(app, base_url="http://ui.example:8237") as c:
            assert 401 == c.get("/api/jobs").status_code
            assert 401 == c.get("/").status_code
            assert 401 == c.get("/", headers={"authorization": "Bearer wrong"}).status_code
            assert 200 == c.get("/static/app.css").status_code
            auth = {"authorization": "Bearer s3cret"}
            assert 200 == c.get("/api/jobs", headers=auth).status_code
            login = c.get("/inbox?token=s3cret", follow_redirects=False)
            assert (303, "/inbox") == (login.status_code, login.headers["location"])
            assert "HttpOnly" in login.headers["set-cookie"]
            assert 200 == c.get("/inbox").status_code  # the cookie
            # The cookie alone does not make a POST: it needs the CSRF token too.
            assert 403 == c.post(f"/api/jobs/{job}/pause").status_code
            scripted = c.post(
                f"/api/jobs/{job}/resume", headers=auth, json={"values": {"answer": "no"}}
            )
            assert 202 == scripted.status_code
            assert "completed" == wait_status(store, job, "completed")

    def test_read_only_refuses_every_post(self, store: SqliteJobStore) -> None:
        """--read-only: every POST is 403, even with the tokens; the pages show no buttons."""
        job = approval_job(store)
        app = create_app_for(store, read_only=True, token="t")
        headers = {"authorization": "Bearer t", "x-csrf-token": CSRF}
        with TestClient(app, base_url=BASE, headers=headers) as c:
            for action in ("pause", "resume", "cancel", "retry"):
                response = c.post(f"/api/jobs/{job}/{action}")
                assert 403 == response.status_code
                assert "read-only" in response.json()["error"]
            page = c.get(f"/jobs/{job}").text
            assert "data-action=" not in page
            assert '<form class="answer"' not in c.get("/inbox").text
            assert {"pause": False, "resume": False, "cancel": False, "retry": False} == (
                c.get(f"/api/jobs/{job}").json()["actions"]
            )
        assert "paused" == store.load_job(job).status

    def test_security_headers(self, client: TestClient) -> None:
        """Every answer forbids other scripts, framing and sniffing."""
        headers = client.get("/").headers
        assert "script-src 'self' 'wasm-unsafe-eval'" in headers["content-security-policy"]
        assert ("DENY", "nosniff", "no-referrer") == (
            headers["x-frame-options"],
            headers["x-content-type-options"],
            headers["referrer-policy"],
        )

    def test_ids_with_a_slash_are_one_segment(
        self, client: TestClient, store: SqliteJobStore
    ) -> None:
        """A job id with ``/`` in it is addressed with ``%2F`` and found."""
        job = approval_job(store, job_id="team/a")
        assert "team/a" == client.get(f"/api/jobs/{quote(job, safe='')}").json()["job_id"]
        assert 200 == client.get(f"/jobs/{quote(job, safe='')}").status_code


def create_app_for(store: SqliteJobStore, **options: object):  # type: ignore[no-untyped-def]
    """The page over ``store`` with the tests' CSRF token."""
    from routilux_ui import create_app

    return create_app(store, csrf_token=CSRF, **options)  # type: ignore[arg-type]
