"""
Routines for the CLI and store tests, registered by name; subprocesses load this file with
``routilux --import tests/integration/cli_routines.py``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from routilux import Routine
from routilux.registry import get_routine_class, register_routine


__all__ = ["Boom", "CancelSelf", "Emit", "FailOnce", "PutValue", "Record", "flow_data"]


def _register(cls: type[Routine], name: str) -> None:
    # Importing this file twice (by path and as a module) must not register two classes.
    try:
        existing = get_routine_class(name)
    except LookupError:
        register_routine(cls, name=name)
        return
    if existing.__qualname__ != cls.__qualname__:
        msg = f"{name} is taken by {existing!r}"
        raise RuntimeError(msg)


class Emit(Routine):
    """
    Entry: ``trigger(n)`` emits ``item`` n times with ``{"i": index}``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("item", ["i"])

    def go(self, n: int = 3, **_: Any) -> None:
        for i in range(int(n)):
            self.emit("item", i=i)


class Record(Routine):
    """
    Appends ``<idempotency key> <i>`` to the file ``config["path"]`` for every activation.

    With ``config["block_at"] == i`` and no file at ``config["marker"]``, it writes the marker
    and blocks for ever (the test kills the process there); ``config["delay"]`` seconds of
    simulated work per activation.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(path="", block_at=None, marker="", delay=0.0)
        self.define_slot("input", self.take)
        self.define_event("done", ["i"])

    def take(self, i: int = 0, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        with open(self.get_config("path"), "a", encoding="utf-8") as fh:
            fh.write(f"{ctx.idempotency_key} {i}\n")
            fh.flush()
            os.fsync(fh.fileno())
        marker = self.get_config("marker")
        if self.get_config("block_at") == i and marker and not os.path.exists(marker):
            with open(marker, "w", encoding="utf-8") as fh:
                fh.write(str(os.getpid()))
            threading.Event().wait()
        delay = float(self.get_config("delay") or 0)
        if delay:
            time.sleep(delay)  # simulated work, so another process can act meanwhile
        self.emit("done", i=i)


class Boom(Routine):
    """
    Entry whose trigger always raises.
    """

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)

    def go(self, **_: Any) -> None:
        msg = "boom"
        raise RuntimeError(msg)


class CancelSelf(Routine):
    """
    Entry that cancels its own job.
    """

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)

    def go(self, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.flow.cancel(ctx.job_state, reason="self-cancel")


class FailOnce(Routine):
    """
    Entry that fails the first time (no file at ``config["marker"]``: it writes it and
    raises), then emits ``item`` ``n`` times as Emit does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(marker="")
        self.define_slot("trigger", self.go)
        self.define_event("item", ["i"])

    def go(self, n: int = 3, **_: Any) -> None:
        marker = self.get_config("marker")
        if not os.path.exists(marker):
            with open(marker, "w", encoding="utf-8") as fh:
                fh.write("failed once")
            msg = "first run fails"
            raise RuntimeError(msg)
        for i in range(int(n)):
            self.emit("item", i=i)


class PutValue(Routine):
    """
    Entry that puts a value JSON cannot hold into shared data ``tags``: a set
    (``kind="set"``), NaN (``"nan"``) or an integer of 5,000 digits (``"bigint"``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(kind="set")
        self.define_slot("trigger", self.go)

    def go(self, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        kind = self.get_config("kind")
        value: Any = {"set": {"a", "b"}, "nan": float("nan"), "bigint": 10**4999}[kind]
        ctx.job_state.update_shared_data("tags", value)


_register(Emit, "tests.Emit")
_register(FailOnce, "tests.FailOnce")
_register(PutValue, "tests.PutValue")
_register(Record, "tests.Record")
_register(Boom, "tests.Boom")
_register(CancelSelf, "tests.CancelSelf")


def flow_data(flow_id: str, path: str, **record_config: Any) -> dict[str, Any]:
    """
    Return a serialized Emit -> Record flow writing to ``path``.
    """
    from routilux import Flow

    flow = Flow(flow_id)
    record = Record()
    record.set_config(path=path, **record_config)
    flow.add_routine(Emit(), "src")
    flow.add_routine(record, "rec")
    flow.connect("src", "item", "rec", "input")
    return flow.serialize()
