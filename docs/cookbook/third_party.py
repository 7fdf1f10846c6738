"""
A flow file that uses a routine of a third-party package: routilux-acme declares
``acme.Slugify`` in the ``routilux.routines`` entry points, and installing it is all it takes.
"""

import os
import subprocess
import sys
from pathlib import Path


HERE = Path(__file__).resolve().parent


def main():
    # pip install ./routilux-acme, here into a folder of its own (offline: --no-index, and
    # hatchling, its build backend, is already installed).
    site = Path("site").resolve()
    offline = ["--no-deps", "--no-index", "--no-build-isolation", "--target", str(site)]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", *offline, str(HERE / "routilux-acme")],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path[1:]])}

    def routilux(*args):
        command = [sys.executable, "-m", "routilux.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=True)

    listed = routilux("routines").stdout.splitlines()
    print([line for line in listed if line.startswith("acme.")])
    run = routilux(
        "run",
        str(HERE / "slugs.json"),
        "--param",
        "text=Hello, Event-Driven World!",
        "--job-id",
        "slugs-1",
        "--store",
        "jobs.db",
    )
    print(run.stdout, end="")


if __name__ == "__main__":
    main()
