"""
The pages in headless Chromium (Debian's ``chromium``, driven by Playwright).

Answer the approval job from the inbox and watch it complete, read the flow's picture, cancel
a running job. The screenshots of the documentation are taken here (``docs/_static/ui-*.png``).

When Chromium cannot start, these tests are skipped with one line saying why; under
``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LiveServer
from ui_routines import EVIL, RunningJob, approval_job, evil_job, wait_status

from routilux.store import SqliteJobStore


CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The screenshots of the documentation are written there with ROUTILUX_SCREENSHOTS=1 (`make
# screenshots`); otherwise into the test's temporary folder, so a test run leaves the
# checkout as it was (ids and times differ from run to run).
DOCS_STATIC = Path(__file__).parents[2] / "docs" / "_static"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return DOCS_STATIC if os.environ.get("ROUTILUX_SCREENSHOTS") == "1" else tmp_path


WAIT = 10_000  # ms


def _cannot_start(why: str, *, module: bool = False) -> None:
    # One line saying why; a failure under CI=true, where the browser must be there.
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests: {why}", pytrace=False)
    pytest.skip(f"browser tests skipped: {why}", allow_module_level=module)


try:
    from playwright.sync_api import sync_playwright
except ImportError as _exc:
    _cannot_start(f"playwright is not installed ({_exc})", module=True)
if not os.path.exists(CHROMIUM):
    _cannot_start(f"{CHROMIUM} is missing (apt-get install chromium)", module=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, or a skip (a failure under CI=true) naming why it cannot start."""
    threads = set(threading.enumerate())
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as exc:
            _cannot_start(f"{CHROMIUM} does not start: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()
    # Playwright's event loop leaves its executor's threads ("asyncio_N") to end by
    # themselves: wait for them, so that no later test counts them. (The workers of the
    # flows run_job keeps for this process stay, as they do in any process that runs jobs.)
    for thread in set(threading.enumerate()) - threads:
        if thread.name.startswith("asyncio_"):
            thread.join(WAIT / 1000)
            assert not thread.is_alive(), f"Playwright's thread {thread.name} still runs"


@pytest.fixture
def page(browser: Any, live: LiveServer) -> Iterator[Any]:
    """A page of 1280x860 (closed before the server stops) that fails the test on a script
    error or an error in the console."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.problems = problems
    yield tab
    context.close()
    assert [] == problems


def _node_states(tab: Any) -> dict[str, str]:
    # routine id -> the state class of its box in the picture.
    tab.wait_for_selector("#graph svg g.node", timeout=WAIT)
    return tab.eval_on_selector_all(
        "#graph svg g.node",
        """nodes => Object.fromEntries(nodes.map(n => [
            n.querySelector('title').textContent,
            Array.from(n.classList).find(c => c.startsWith('st-')).slice(3)]))""",
    )


def _box_fill(tab: Any, state: str) -> str:
    return tab.eval_on_selector(
        f"#graph svg g.node.st-{state} path, #graph svg g.node.st-{state} polygon",
        "el => getComputedStyle(el).fill",
    )


def test_answer_the_approval_from_the_inbox(
    page: Any, live: LiveServer, store: SqliteJobStore, shots: Path
) -> None:
    """Jobs page, the job's picture, the inbox; 'yes' (key 1) and the job turns completed
    without a reload; its picture then shows every routine completed."""
    for amount in (40, 75):
        approval_job(store, amount=amount)
    job = approval_job(store)
    page.goto(live.url + "/")
    row = page.locator(f'tr[data-job="{job}"]')
    assert "paused" == row.locator(".status").inner_text()
    assert "expense-approval" in row.inner_text()
    page.screenshot(path=str(shots / "ui-jobs.png"))

    page.click(f'a[href="/jobs/{job}"]')
    assert {"ask": "waiting", "decide": "idle"} == _node_states(page)
    assert _box_fill(page, "waiting") != _box_fill(page, "idle")
    page.screenshot(path=str(shots / "ui-job.png"), full_page=True)

    page.click("nav >> text=Inbox")
    task = page.locator(f'.task[data-job="{job}"]')
    assert (
        "Approve 120 EUR for ana (train ticket)? yes/no" == task.locator(".question").inner_text()
    )
    page.screenshot(path=str(shots / "ui-inbox.png"))
    task.focus()
    page.keyboard.press("1")  # the first choice: yes
    answered = page.locator(f'#answered [data-live-job="{job}"]')
    answered.wait_for(timeout=WAIT)
    page.wait_for_function(
        "el => el.textContent === 'completed'", arg=answered.element_handle(), timeout=WAIT
    )
    assert "completed" == store.load_job(job).status
    assert 2 == page.locator("#inbox-items .task").count()

    page.goto(f"{live.url}/jobs/{job}")
    assert {"ask": "completed", "decide": "completed"} == _node_states(page)
    assert re.search(r"approved", page.locator(".timeline").inner_text())


def test_cancel_a_running_job_from_its_page(
    page: Any, live: LiveServer, store: SqliteJobStore
) -> None:
    """The page of a running job shows its routine running; Cancel turns it cancelled."""
    running = RunningJob(store)
    try:
        page.goto(f"{live.url}/jobs/{running.job_id}")
        assert "running" == page.locator("#job-head .status").inner_text()
        page.wait_for_function(
            "() => document.querySelector('#graph g.node.st-running, #graph g.node.st-completed')",
            timeout=WAIT,
        )
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("button[data-action=cancel]")
        page.wait_for_function(
            "() => document.querySelector('#job-head .status').textContent === 'cancelled'",
            timeout=WAIT,
        )
        assert "cancelled" == wait_status(store, running.job_id, "cancelled")
        # The head is fetched again once the job changed: a cancelled job offers nothing.
        page.wait_for_function("() => !document.querySelector('button[data-action]')", timeout=WAIT)
    finally:
        running.stop()


def test_markup_in_a_job_stays_text(page: Any, live: LiveServer, store: SqliteJobStore) -> None:
    """A job whose id and data hold <script> and an onerror image shows them as text."""
    job = evil_job(store)
    page.on("dialog", lambda dialog: page.problems.append(f"a dialog opened: {dialog.message}"))
    page.goto(live.url + "/")
    assert EVIL[1] in page.locator(".jobs").inner_text()
    page.click(".jobs a.id")
    assert {EVIL[1]: "completed"} == _node_states(page)
    assert "<script>alert(" in page.locator("#job-details").inner_text()
    assert 0 == page.locator("#job img, #job script, #graph svg image").count()
    assert job == page.locator("#job").get_attribute("data-job")
    # The vendored htmx can evaluate code (hx-on, js: values): the page turns that off, so
    # nothing of a job's data ever reaches it, and it requests only its own server.
    config = (
        "() => [htmx.config.allowEval, htmx.config.allowScriptTags, htmx.config.selfRequestsOnly]"
    )
    assert [False, False, True] == page.evaluate(config)
