"""
The testing kit: helpers and pytest fixtures for people who write routines and flows.

Helpers (no pytest needed to import them): :func:`run_flow` runs a job to completion and
answers the questions it asks a person; :func:`assert_emitted`, :func:`assert_outputs` and
:func:`assert_no_errors` check a finished job and explain a failure with the part of its
history that matters; :func:`write_testcase` writes a pytest test from a stored job (the
``routilux testcase`` command).

Fixtures (the pytest plugin ``routilux.testing._plugin``, registered through the ``pytest11``
entry point and inert until a test asks for one): ``routilux_flow`` (a factory of flows shut
down after the test), ``routilux_store`` (a throwaway SQLite job store), ``routilux_events``
(every stream event of the jobs the test runs, a :class:`RecordedEvents`), ``routilux_clock``
(a :class:`FakeClock` that retry back-offs, timeouts and deadlines wait on).

.. versionadded:: 0.10
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from routilux.testing._checks import (
        assert_emitted,
        assert_no_errors,
        assert_outputs,
        describe_job,
    )
    from routilux.testing._clock import FakeClock
    from routilux.testing._events import RecordedEvents
    from routilux.testing._run import run_flow
    from routilux.testing._testcase import import_routines, job_results, write_testcase

# Imported on first use, so that loading the pytest plugin (a submodule) stays cheap.
_EXPORTS: dict[str, str] = {
    "FakeClock": "routilux.testing._clock",
    "RecordedEvents": "routilux.testing._events",
    "assert_emitted": "routilux.testing._checks",
    "assert_no_errors": "routilux.testing._checks",
    "assert_outputs": "routilux.testing._checks",
    "describe_job": "routilux.testing._checks",
    "import_routines": "routilux.testing._testcase",
    "job_results": "routilux.testing._testcase",
    "run_flow": "routilux.testing._run",
    "write_testcase": "routilux.testing._testcase",
}

__all__ = [
    "FakeClock",
    "RecordedEvents",
    "assert_emitted",
    "assert_no_errors",
    "assert_outputs",
    "describe_job",
    "import_routines",
    "job_results",
    "run_flow",
    "write_testcase",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    msg = f"module 'routilux.testing' has no attribute {name!r}"
    raise AttributeError(msg)
