"""
Fixtures of the routilux-postgres tests: a throwaway PostgreSQL cluster on a free loopback port
and real ``routilux worker`` subprocesses.

The server comes from the system packages (``apt-get install postgresql``; ``.ci/run`` installs
it). Where it is missing the PostgreSQL tests skip, saying so, except under CI (``CI=true``),
where they fail. As root, the server runs as the ``postgres`` user (it refuses root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


TESTS = Path(__file__).resolve().parents[1]


def _bindir() -> Path | None:
    found = shutil.which("pg_config")
    candidates: list[str] = []
    if found:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for path in candidates:
        if (Path(path) / "initdb").exists() and (Path(path) / "pg_ctl").exists():
            return Path(path)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1 with the routilux schema; its DSN."""
    pytest.importorskip("routilux_postgres", reason="routilux-postgres is not installed")
    bindir = _bindir()
    if bindir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="routilux-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = base / "data"
    port = _free_port()
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "log"),
            "-w",
            "-o",
            options,
            "start",
        ],
        check=True,
        capture_output=True,
    )
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        from routilux_postgres import migrate

        migrate(dsn)
        yield dsn
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def clean_db(pg_dsn: str) -> str:
    """The DSN, with no routilux job and no queue entry left by an earlier test."""
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE routilux_jobs, routilux_flows, procrastinate_jobs, "
            "procrastinate_periodic_defers, procrastinate_workers CASCADE"
        )
    return pg_dsn


class Worker:
    """A ``routilux worker`` subprocess."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def start_worker(clean_db: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start ``routilux worker`` subprocesses on the test database; kill them afterwards."""
    workers: list[Worker] = []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))

    def start(*extra: str, concurrency: int = 1) -> Worker:
        log = tmp_path / f"worker-{len(workers)}.log"
        args = [
            sys.executable,
            "-m",
            "routilux.cli",
            "worker",
            "--dsn",
            clean_db,
            "--import",
            "scaleout_routines",
            "--concurrency",
            str(concurrency),
            "--heartbeat",
            "0.5",
            "--stall-timeout",
            "2",
            "--reap-every",
            "0",
            "--poll-interval",
            "0.5",
            "--log-level",
            "info",
            *extra,
        ]
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        worker = Worker(proc, log)
        workers.append(worker)
        return worker

    yield start
    for w in workers:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGKILL)
        w.proc.wait(timeout=10)
