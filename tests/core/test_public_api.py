"""
The public API: every public module lists exactly its public names, and they import.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest


PUBLIC_MODULES = [
    "routilux",
    "routilux.exceptions",
    "routilux.hookspecs",
    "routilux.serialization",
    "routilux.registry",
    "routilux.job_state",
    "routilux.history",
    "routilux.routine",
    "routilux.slot",
    "routilux.event",
    "routilux.connection",
    "routilux.error_handler",
    "routilux.execution_tracker",
    "routilux.output_handler",
    "routilux.flow",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_complete_and_importable(name: str) -> None:
    """Every name in __all__ exists; every public top-level class or function is listed."""
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


def test_exceptions_derive_from_root_and_builtins() -> None:
    """Every exception is a RoutiluxError; lookup errors are also ValueErrors."""
    from routilux import exceptions

    for attr in exceptions.__all__:
        cls = getattr(exceptions, attr)
        if attr == "RoutiluxWarning":
            assert issubclass(cls, Warning)
            continue
        assert issubclass(cls, exceptions.RoutiluxError)
    for cls in [
        exceptions.RoutineNotFoundError,
        exceptions.SlotNotFoundError,
        exceptions.EventNotFoundError,
        exceptions.DeserializationError,
        exceptions.ConfigurationError,
        exceptions.DuplicateNameError,
    ]:
        assert issubclass(cls, ValueError)


def test_import_is_cheap() -> None:
    """import routilux loads neither handlers, stdlib, plugins nor optional extras."""
    code = (
        "import sys, routilux; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('routilux_handlers', 'routilux_stdlib', 'psycopg', 'procrastinate', 'distributed', "
        "'opentelemetry')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version() -> None:
    """__version__ comes from the package."""
    import routilux

    assert routilux.__version__.count(".") == 2
