"""
Coverage-guided fuzzing of Flow and JobState loading with atheris (optional: skipped
with a message when atheris is not installed; ``pip install atheris``).

The input bytes pick a base document (flow or job), a path inside it, a mutation and a
value decoded from the remaining bytes as JSON; loading must succeed or raise
DeserializationError, must not import any canary module and must not call the
registered canary callable.

Run: .venv/bin/python benchmarks/fuzz_load.py [-max_total_time=30] [other libFuzzer flags]
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the machine
    atheris = None

with atheris.instrument_imports() if atheris is not None else contextlib.nullcontext():
    from stress._hostile import (
        HOSTILE_NAMES,
        base_flow_doc,
        base_job_doc,
        mutate,
        new_canaries,
        paths,
    )

    from routilux import Flow, JobState
    from routilux.exceptions import DeserializationError
    from routilux.serialization import register_callable

CALLS: list[Any] = []


def _canary(*args: Any, **kwargs: Any) -> None:
    CALLS.append((args, kwargs))


DOCS = {"flow": base_flow_doc(), "job": base_job_doc()}
PATHS = {kind: paths(doc) for kind, doc in DOCS.items()}
OPS = ("replace", "delete", "extra", "wrap")
BASELINE = new_canaries()


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    kind = "flow" if fdp.ConsumeBool() else "job"
    path = PATHS[kind][fdp.ConsumeIntInRange(0, len(PATHS[kind]) - 1)]
    op = OPS[fdp.ConsumeIntInRange(0, len(OPS) - 1)]
    if fdp.ConsumeBool():
        value: Any = HOSTILE_NAMES[fdp.ConsumeIntInRange(0, len(HOSTILE_NAMES) - 1)]
    else:
        text = fdp.ConsumeUnicodeNoSurrogates(200)
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = text
    try:
        doc = mutate(DOCS[kind], path, op, value)
    except (KeyError, IndexError, TypeError, AttributeError):
        return
    try:
        if kind == "flow":
            Flow().deserialize(doc)
        else:
            JobState().deserialize(doc)
    except DeserializationError as exc:
        if not isinstance(exc.path, str):
            raise AssertionError(f"path is {exc.path!r}") from exc
    imported = new_canaries() - BASELINE
    if imported:
        raise AssertionError(f"loading imported {imported}")
    if CALLS:
        raise AssertionError(f"loading called a registered callable: {CALLS[:3]}")


def main() -> int:
    if atheris is None:
        print("atheris is not installed: pip install atheris")
        return 0
    register_callable(_canary, "stress.canary")
    argv = list(sys.argv)
    if not any(a.startswith("-max_total_time") or a.startswith("-runs") for a in argv[1:]):
        argv.append("-max_total_time=20")
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
