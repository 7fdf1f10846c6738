"""
Hostile documents for the loaders: valid Flow and JobState documents mutated at random
paths with wrong types, missing and extra fields, huge or deeply nested values, objects
whose dunder methods raise, and names of real modules that must never be imported.

Shared by ``test_fuzz_loading.py`` (Hypothesis) and ``benchmarks/fuzz_load.py`` (atheris).
"""

from __future__ import annotations

import copy
import sys
from typing import Any

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine


#: Standard-library modules that nothing in routilux imports: a loader that imported a
#: name from a document would make one of them appear in ``sys.modules``.
CANARY_MODULES = (
    "this",
    "tabnanny",
    "mailbox",
    "wave",
    "colorsys",
    "ftplib",
    "imaplib",
    "poplib",
    "zipapp",
    "netrc",
)

#: Names of real modules and callables, in every spelling a loader might try.
HOSTILE_NAMES = [
    *CANARY_MODULES,
    *(f"{m}:main" for m in CANARY_MODULES),
    *(f"{m}.main" for m in CANARY_MODULES),
    "os:system",
    "os.system",
    "subprocess:Popen",
    "subprocess.check_call",
    "builtins:eval",
    "builtins.exec",
    "__builtin__.eval",
    "importlib:import_module",
    "pickle:loads",
    "ctypes:CDLL",
    "__main__:Anything",
    "routilux._flow:Flow",
    "routilux.job_state.JobState",
    "lambda x: __import__('this')",
    "__import__('tabnanny')",
    "().__class__.__base__.__subclasses__()",
]


class Hostile:
    """A value whose every protocol method raises (and records that it was called)."""

    calls: list[str] = []

    def _boom(self, name: str) -> Any:
        Hostile.calls.append(name)
        msg = f"Hostile.{name} called"
        raise RuntimeError(msg)

    def __repr__(self) -> str:
        return str(self._boom("__repr__"))

    def __str__(self) -> str:
        return str(self._boom("__str__"))

    def __eq__(self, other: object) -> bool:
        return bool(self._boom("__eq__"))

    def __hash__(self) -> int:
        return int(self._boom("__hash__"))

    def __iter__(self) -> Any:
        return self._boom("__iter__")

    def __len__(self) -> int:
        return int(self._boom("__len__"))

    def __bool__(self) -> bool:
        return bool(self._boom("__bool__"))

    def __float__(self) -> float:
        return float(self._boom("__float__"))

    def __index__(self) -> int:
        return int(self._boom("__index__"))

    def __fspath__(self) -> str:
        return str(self._boom("__fspath__"))


class SneakyStr(str):
    """A ``str`` subclass: a loader must not treat it as anything but text."""


class SneakyDict(dict):  # type: ignore[type-arg]
    """A ``dict`` subclass whose ``keys``/``items`` raise."""

    def keys(self) -> Any:
        raise RuntimeError("SneakyDict.keys")

    def items(self) -> Any:
        raise RuntimeError("SneakyDict.items")


def deep(depth: int, leaf: Any = 0, kind: str = "list") -> Any:
    """A value nested ``depth`` levels deep, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


def huge_values() -> list[Any]:
    """Values that are expensive if a loader is careless."""
    return [
        10**4000,
        -(10**4000),
        2**64,
        float("nan"),
        float("inf"),
        "x" * 200_000,
        list(range(50_000)),
        {str(i): i for i in range(20_000)},
        deep(99),
        deep(101, kind="dict"),
        deep(900),
    ]


def base_flow_doc() -> dict[str, Any]:
    """A valid document of a small flow (base Routine type only)."""
    flow = Flow("fuzz", "concurrent", 3)
    a = Routine()
    a.define_slot("trigger")
    a.define_event("out", ["x"])
    b = Routine()
    b.define_slot("inp", merge_strategy="append")
    b.set_error_handler(ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=2))
    flow.add_routine(a, "a")
    flow.add_routine(b, "b")
    flow.connect("a", "out", "b", "inp", {"x": "y"})
    return flow.serialize()


def base_job_doc() -> dict[str, Any]:
    """A valid document of a paused job with history, logs and a pending task."""
    flow = Flow("fuzz", "concurrent", 2)
    a = Routine()
    a.define_slot("trigger", lambda x=None: a.emit("out", x=x))
    a.define_event("out", ["x"])
    b = Routine()
    b.define_slot("inp", lambda x=None: None)
    flow.add_routine(a, "a")
    flow.add_routine(b, "b")
    flow.connect("a", "out", "b", "inp")
    js = flow.execute("a", {"x": 1})
    js.update_shared_data("k", [1, {"n": None}])
    js.append_to_shared_log({"m": "hello"})
    js.set_metadata("owner", "fuzz")
    flow.pause(js, "fuzz", {"step": 1})
    doc = js.serialize()
    doc["pending_tasks"] = [
        {
            "slot_routine_id": "b",
            "slot_name": "inp",
            "data": {"x": 2},
            "connection_source_routine_id": "a",
            "connection_source_event_name": "out",
            "connection_target_routine_id": "b",
            "connection_target_slot_name": "inp",
            "param_mapping": {},
            "priority": 2,
            "retry_count": 0,
            "max_retries": 0,
            "created_at": "2026-01-01T00:00:00",
            "seq": 3,
            "entry": False,
        }
    ]
    doc["deferred_events"] = [
        {"routine_id": "a", "event_name": "out", "data": {"x": 3}, "timestamp": "2026-01-01"}
    ]
    flow.shutdown()
    return doc


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indices) inside a JSON-like document."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.extend(paths(value, (*prefix, key)))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out.extend(paths(value, (*prefix, i)))
    return out


def mutate(doc: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    """
    Return a copy of ``doc`` with one mutation at ``path``: ``replace`` the value,
    ``delete`` it, add an ``extra`` key or item beside it, or ``wrap`` it in a list.
    """
    doc = copy.deepcopy(doc)
    if not path:
        return value if op != "wrap" else [doc]
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "replace":
        parent[last] = value
    elif op == "delete":
        del parent[last]
    elif op == "extra":
        if isinstance(parent, dict):
            parent[f"extra_{len(parent)}"] = value
        else:
            parent.append(value)
    else:
        parent[last] = [parent[last]]
    return doc


def new_canaries() -> set[str]:
    """The canary modules imported since :func:`canaries_absent` was checked."""
    return {m for m in CANARY_MODULES if m in sys.modules}
