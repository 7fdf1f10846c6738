"""
Small routines shared by the tests (importable as ``helpers`` thanks to tests/conftest.py).
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from routilux import Flow, Routine


T = TypeVar("T")


class Emitter(Routine):
    """Entry routine: emits ``out`` once per item of ``items`` (or once with ``value``)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, items: Any = None, value: Any = None, **_: Any) -> None:
        if items is None:
            self.emit("out", value=value)
            return
        for item in items:
            self.emit("out", value=item)


class Relay(Routine):
    """Records what it receives in the job's shared log and passes it on."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, value: Any = None, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.append_to_shared_log({"routine": ctx.routine_id, "value": value})
        self.emit("out", value=value)


class Gate(Routine):
    """Blocks in its handler until the test sets ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.returned = threading.Event()
        self.calls = 0
        self.define_slot("input", handler=self.take)
        self.define_slot("trigger", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, value: Any = None, **_: Any) -> None:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10), "test never released the gate"
        self.emit("out", value=value)
        self.returned.set()


def chain(flow: Flow, length: int) -> str:
    """Add an Emitter ``e`` and ``length`` Relays ``r0..`` in a chain; return the last id."""
    flow.add_routine(Emitter(), "e")
    prev = "e"
    for i in range(length):
        rid = f"r{i}"
        flow.add_routine(Relay(), rid)
        flow.connect(prev, "out", rid, "input")
        prev = rid
    return prev


def check_all(name: str) -> None:
    """
    Import the module ``name`` and check its ``__all__``: every listed name exists, and
    every public class or function the module defines itself is listed.
    """
    module = importlib.import_module(name)
    exported = set(module.__all__)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ lists missing {attr}"
    defined = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and getattr(value, "__module__", None) == module.__name__
        and (inspect.isclass(value) or inspect.isfunction(value))
    }
    assert defined <= exported, f"{name} defines public names missing from __all__"


def check_moved_module(old: str, new: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Check the deprecated re-export ``old`` of module ``new``: importing it (again) issues a
    DeprecationWarning naming the new import, and it gives exactly ``new``'s public names.
    """
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=f"import {new} instead"):
        shim = importlib.import_module(old)
    module = importlib.import_module(new)
    assert set(module.__all__) == set(shim.__all__)
    for name in shim.__all__:
        assert getattr(module, name) is getattr(shim, name)


def run_python(code: str, *, prelude: str = "") -> str:
    """
    Run ``prelude`` then ``code`` (dedented) in a fresh interpreter; return what it printed.
    A non-zero exit fails the test with the child's stderr.
    """
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert 0 == proc.returncode, proc.stderr
    return proc.stdout


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """
    Wait until ``predicate()`` is true, reading it every few milliseconds, for a condition
    no event announces (another thread's progress); fail naming ``what`` after ``timeout``.
    """
    done = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        done.wait(0.002)


class StillRunning(AssertionError):
    """A call :func:`within` waited for had not returned in time."""


def within(timeout: float, what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """
    Call ``call(*args, **kwargs)`` on a daemon thread and wait at most ``timeout`` seconds
    for it: return its result or raise its exception here. A call still running then fails
    the test naming ``what`` (so a call that would block for ever, such as ``run_job`` of a
    job whose checkpoint never comes, fails the test instead of hanging it).
    """
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, call(*args, **kwargs)))
        except BaseException as exc:  # raised again on the test's thread
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name=f"within: {what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise StillRunning(f"timed out after {timeout} s waiting for {what}")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


@contextmanager
def shut_down_within(flow: Flow, timeout: float = 3.0) -> Iterator[Flow]:
    """
    Use ``flow`` in a ``with`` block and shut it down at its end, waiting at most
    ``timeout`` seconds for its work (``with flow:`` waits as long as a handler runs): a
    test that fails while a handler of the flow never returns fails instead of hanging.
    """
    try:
        yield flow
    finally:
        flow.shutdown(wait=True, timeout=timeout)


def run_job_within(job_id: str, store: Any, timeout: float = 10.0, **kwargs: Any) -> Any:
    """
    ``run_job(job_id, store, **kwargs)``, failing the test (naming the job's stored status)
    when it has not returned after ``timeout`` seconds; its errors are raised here.
    """
    from routilux.store import run_job

    try:
        return within(timeout, f"run_job({job_id!r}) to return", run_job, job_id, store, **kwargs)
    except StillRunning as exc:
        msg = f"{exc} (the store has the job {store.load_job(job_id).status})"
        raise StillRunning(msg) from None


def checkpoint_texts(path: Any, job_id: str) -> dict[int, bytes]:
    """
    The JSON text of each checkpoint of ``job_id`` in the SQLite store at ``path``, by
    sequence number, decoded from the log's rows as the format says (``json``: the text;
    ``zlib``: compressed; ``zlib+prev``: compressed with the row before as dictionary).
    """
    import sqlite3
    import zlib

    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT seq, codec, body FROM routilux_checkpoints WHERE job_id = ? ORDER BY seq",
            (job_id,),
        ).fetchall()
    conn.close()
    texts: dict[int, bytes] = {}
    previous = b""
    for seq, codec, body in rows:
        if codec == "json":
            text = bytes(body)
        elif codec == "zlib":
            text = zlib.decompress(body)
        else:
            assert "zlib+prev" == codec, codec
            unpacker = zlib.decompressobj(zdict=previous)
            text = unpacker.decompress(body) + unpacker.flush()
        texts[seq] = previous = text
    return texts


def damage_checkpoint(path: Any, job_id: str, text: str) -> None:
    """Replace the newest checkpoint of ``job_id`` in the SQLite store at ``path`` by
    ``text``, written plain."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE routilux_checkpoints SET codec = 'json', body = ?, kind = 'full' "
            "WHERE job_id = ? AND seq = (SELECT max(seq) FROM routilux_checkpoints "
            "WHERE job_id = ?)",
            (text.encode(), job_id, job_id),
        )
        conn.execute(
            "UPDATE routilux_jobs SET full_seq = checkpoint_seq WHERE job_id = ?", (job_id,)
        )
    conn.close()
