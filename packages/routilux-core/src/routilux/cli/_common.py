"""
What the subcommands of ``routilux`` share: arguments, the store, imports, questions.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from routilux.exceptions import UsageError as _BadInput
from routilux.names._imports import import_routines  # what the commands here raise


if TYPE_CHECKING:
    from routilux.model._job_state import JobState
    from routilux.store import JobStore
from routilux.cli._codes import DEFAULT_STORE


__all__ = [
    "PATH_ARGUMENTS",
    "check_text_arguments",
    "fmt_time",
    "human_input_class",
    "import_modules",
    "is_text",
    "jsonable",
    "open_store_of",
    "parse_assignments",
    "questions_waiting",
]


def parse_assignments(items: Sequence[str] | None, option: str) -> dict[str, Any]:
    # KEY=VALUE pairs; VALUE is JSON when it parses as JSON, else the plain string.
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            msg = f"{option} expects KEY=VALUE, got {item!r}"
            raise _BadInput(msg)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
        if not is_text(json.dumps([key, out[key]], ensure_ascii=False)):
            msg = (
                f"{option} {item!r}: not valid Unicode text (bytes that are not UTF-8, or "
                "a lone surrogate escape such as \\ud800); no store can keep it"
            )
            raise _BadInput(msg)
    return out


def is_text(value: str) -> bool:
    # Whether ``value`` can be written as UTF-8 (what a job store keeps): command-line bytes
    # that are not UTF-8 arrive as lone surrogates, and so does a "\ud800" JSON escape.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: Arguments that are names or paths of the machine (files, modules), not data for a store.
PATH_ARGUMENTS = frozenset({"flow_file", "store", "imports"})


def check_text_arguments(args: argparse.Namespace) -> None:
    # Refuse a job id, entry, routine, status or flow name the store could not keep or find.
    for name, value in vars(args).items():
        if name in PATH_ARGUMENTS:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and not is_text(item):
                msg = f"{name.replace('_', ' ')} {item!r} is not valid UTF-8 text"
                raise _BadInput(msg)


#: --keep-checkpoints not given: the store's default.
_UNSET = object()


def open_store_of(args: argparse.Namespace, must_exist: bool = True) -> JobStore:
    # --store (else $ROUTILUX_STORE, else DEFAULT_STORE): a SQLite file, or the URL of a store
    # installed through the routilux.stores entry points (postgresql:// in routilux-postgres).
    from routilux.store import open_store, sqlite_path

    target = args.store or os.environ.get("ROUTILUX_STORE") or DEFAULT_STORE
    path = sqlite_path(target)
    if must_exist and path is not None and path != ":memory:" and not os.path.exists(path):
        msg = f"no job store at {path!r} (run a flow first, or pass --store)"
        raise _BadInput(msg)
    keep = getattr(args, "keep_checkpoints", _UNSET)
    return open_store(target) if keep is _UNSET else open_store(target, keep_checkpoints=keep)


def import_modules(modules: Sequence[str] | None) -> None:
    # Modules named with --import on the command line (never by a flow file): they register
    # routines that are not installed through entry points. Whatever their code raises is
    # bad input (exit 2), never a traceback.
    for name in modules or ():
        try:
            import_routines(name)
        except (ImportError, OSError) as exc:
            msg = f"--import {name}: {exc}"
            raise _BadInput(msg) from None
        except Exception as exc:  # noqa: BLE001  # the module's own code failed
            msg = f"--import {name}: {type(exc).__name__}: {exc}"
            raise _BadInput(msg) from None


def human_input_class() -> Any:
    # HumanInput comes from routilux-stdlib through the registry (core never imports it).
    from routilux.exceptions import UnknownRoutineTypeError
    from routilux.names._routines import get_routine_class

    try:
        cls = get_routine_class("HumanInput")
    except UnknownRoutineTypeError:
        return None
    return cls if hasattr(cls, "waiting") and hasattr(cls, "provide_answer") else None


def questions_waiting(job_state: JobState) -> dict[str, dict[str, Any]]:
    cls = human_input_class()
    if cls is None:
        return {}
    waiting: dict[str, dict[str, Any]] = cls.waiting(job_state)
    return waiting


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def fmt_time(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
