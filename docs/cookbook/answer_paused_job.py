"""
Three ways to answer a job that waits for a person: from Python (``run_job(prepare=...)``),
from the command line (``routilux resume --set``) and from the web page (its JSON API, which
the page's answer form uses).
"""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from routilux.store import SqliteJobStore, create_job, load_flow_file, run_job
from routilux_stdlib import HumanInput


APPROVAL = Path(__file__).resolve().parents[2] / "examples" / "approval" / "flow.json"
TOKEN = "s3cret"


def ask(store, job_id, amount):
    """Create an expense approval and run it until it waits for a person."""
    entry = {"amount": amount, "employee": "ana", "reason": "train ticket"}
    create_job(store, load_flow_file(str(APPROVAL)), "ask", entry, job_id=job_id)
    return run_job(job_id, store).status


def decision(store, job_id):
    state = store.load_job(job_id).state
    (route,) = [r["event_name"] for r in state["execution_history"] if r["routine_id"] == "decide"]
    return route


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(url, body=None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


def main():
    store = SqliteJobStore("jobs.db")
    print("expense-1:", ask(store, "expense-1", 40))
    print("expense-2:", ask(store, "expense-2", 75))
    print("expense-3:", ask(store, "expense-3", 120))

    # 1. From Python: answer while the job is loaded, before it runs on.
    def yes(flow, job_state):
        HumanInput.provide_answer(job_state, "ask", answer="yes")

    state = run_job("expense-1", store, prepare=yes)
    print("python:", state.status, decision(store, "expense-1"))

    # 2. From the command line, in another process.
    resume = [sys.executable, "-m", "routilux.cli", "resume", "expense-2", "--store", "jobs.db"]
    proc = subprocess.run([*resume, "--set", "answer=no", "-q"], capture_output=True, text=True)
    print("command:", proc.returncode, proc.stdout.splitlines()[0], decision(store, "expense-2"))

    # 3. From the web page: `routilux ui` serves it; a script sends the answer form's request.
    port = free_port()
    serve = ["ui", "--store", "jobs.db", "--port", str(port), "--token", TOKEN]
    page = subprocess.Popen(
        [sys.executable, "-m", "routilux.cli", *serve],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # until the page serves
            try:
                _, inbox = api(f"{base}/api/inbox")
                break
            except OSError:
                if time.monotonic() > deadline or page.poll() is not None:
                    sys.exit("the page did not start")
                time.sleep(0.05)
        print("inbox:", [(item["job_id"], item["question"]) for item in inbox["items"]])
        status, _ = api(f"{base}/api/jobs/expense-3/resume", {"values": {"answer": "yes"}})
        print("page:", status, store.wait_settled("expense-3", timeout=30), end=" ")
        print(decision(store, "expense-3"))
    finally:
        page.terminate()
        page.wait(timeout=30)
    store.close()


if __name__ == "__main__":
    main()
