"""
A long job, checkpointed as it runs, killed half way and resumed: ``routilux run`` keeps the
job in a job store, and ``routilux resume`` takes it over after its process died.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from crunch import Crunch, Numbers

from routilux import Flow
from routilux.store import SqliteJobStore


HERE = Path(__file__).resolve().parent
COUNT = 20


def build_flow():
    flow = Flow("long-job")
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(Crunch(), "crunch")
    flow.connect("numbers", "number", "crunch", "input")
    return flow


def routilux(*args):
    store = ["--store", "jobs.db", "--import", str(HERE / "crunch.py")]
    return [sys.executable, "-m", "routilux.cli", *args, *store]


def crunched():
    log = Path("crunched.txt")
    return log.read_text().split() if log.exists() else []


def main():
    Path("long.json").write_text(json.dumps(build_flow().serialize()))
    # Checkpoint after every activation: a killed run re-does at most the one in flight.
    run = ["run", "long.json", "--job-id", "long-1", "--param", f"count={COUNT}"]
    runner = subprocess.Popen(
        routilux(*run, "--checkpoint-every", "1", "-q"),
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while len(crunched()) < 5:  # let it get a quarter of the way
        if time.monotonic() > deadline or runner.poll() is not None:
            sys.exit("the run did not get going")
        time.sleep(0.02)
    os.kill(runner.pid, signal.SIGKILL)  # no chance to pause or save anything
    runner.wait()
    with SqliteJobStore("jobs.db") as store:
        print("killed; the store says:", store.load_job("long-1").status)

    # On this host the dead runner is recognised by its pid: resume takes the job over.
    resumed = subprocess.run(routilux("resume", "long-1", "-q"), capture_output=True, text=True)
    print("resume exit code:", resumed.returncode, "-", resumed.stdout.splitlines()[0])
    with SqliteJobStore("jobs.db") as store:
        squares = store.load_job("long-1").state["shared_data"]["squares"]
    print("squares:", len(squares), "of", COUNT, "- sum", sum(squares.values()))
    done = crunched()
    print("every number crunched:", sorted(set(map(int, done))) == list(range(COUNT)))
    print("at most one number crunched twice (the one in flight):", len(done) - len(set(done)) <= 1)


if __name__ == "__main__":
    main()
