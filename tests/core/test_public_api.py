"""
The public API: every public module lists exactly its public names, and they import.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
from datetime import datetime

import pytest
from helpers import check_all, run_python


PUBLIC_MODULES = [
    "routilux",
    "routilux.exceptions",
    "routilux.hookspecs",
    "routilux.serialization",
    "routilux.registry",
    "routilux.job_state",
    "routilux.lifecycle",
    "routilux.history",
    "routilux.routine",
    "routilux.slot",
    "routilux.event",
    "routilux.connection",
    "routilux.error_handler",
    "routilux.execution_tracker",
    "routilux.output_handler",
    "routilux.flow",
    "routilux.flow.task",
    "routilux.flow.dependency",
    "routilux.store",
    "routilux.store.sql",
    "routilux.cli",
    "routilux.graph",
]

BUILTIN_MODULES = {
    "routilux.builtin_routines.text_processing": ["ResultExtractor", "TextClipper", "TextRenderer"],
    "routilux.builtin_routines.utils": ["DataFlattener", "TimeProvider"],
    "routilux.builtin_routines.data_processing": ["DataTransformer", "DataValidator"],
    "routilux.builtin_routines.control_flow": ["ConditionalRouter"],
}
BUILTINS = sorted(name for names in BUILTIN_MODULES.values() for name in names)

# Run first by run_python(prelude=HIDE_STDLIB): routilux-stdlib is not importable and declares
# no entry points, as if it were not installed.
HIDE_STDLIB = """
import importlib.metadata as md
import sys

sys.modules["routilux_stdlib"] = None
real_entry_points = md.entry_points


def entry_points(**kw):
    eps = real_entry_points(**kw)
    return md.EntryPoints(e for e in eps if not e.value.startswith("routilux_stdlib"))


md.entry_points = entry_points
"""


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_complete_and_importable(name: str) -> None:
    """Every name in __all__ exists; every public top-level class or function is listed."""
    check_all(name)


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


class TestBuiltinRoutines:
    """The built-ins of routilux-stdlib, exported by routilux and the original module paths."""

    def test_exported_by_routilux_with_stdlib(self) -> None:
        """With routilux-stdlib installed, routilux lists the built-ins and gives its classes."""
        routilux_stdlib = pytest.importorskip("routilux_stdlib")
        import routilux

        for name in BUILTINS:
            assert name in routilux.__all__
            assert getattr(routilux_stdlib, name) is getattr(routilux, name)
        namespace: dict[str, object] = {}
        exec("from routilux import *", namespace)
        assert routilux_stdlib.TextClipper is namespace["TextClipper"]
        assert routilux.Flow is namespace["Flow"]

    def test_star_import_without_stdlib(self) -> None:
        """
        Without routilux-stdlib, ``from routilux import *`` imports the core names and no
        built-in; importing a built-in says to install routilux-stdlib.
        """
        out = run_python(
            """
            import json

            try:
                import routilux_stdlib
            except ImportError:
                print("stdlib hidden")
            from routilux import *

            print(json.dumps(dir()))
            import routilux

            print(json.dumps(routilux.__all__))
            for module in ("routilux", "routilux.builtin_routines.text_processing"):
                try:
                    exec(f"from {module} import TextClipper")
                except ImportError as exc:
                    print("ERR", exc)
            """,
            prelude=HIDE_STDLIB,
        )
        hidden, imported, exported, *errors = out.splitlines()
        assert "stdlib hidden" == hidden
        assert {"Flow", "Routine", "JobState", "Slot", "Event"} <= set(json.loads(imported))
        assert not set(BUILTINS) & set(json.loads(imported) + json.loads(exported))
        assert 2 == len(errors)
        for error in errors:
            assert "pip install routilux-stdlib" in error

    @pytest.mark.parametrize(("module_name", "names"), list(BUILTIN_MODULES.items()))
    def test_original_module_paths(self, module_name: str, names: list[str]) -> None:
        """Each sub-module of routilux.builtin_routines gives routilux-stdlib's classes."""
        routilux_stdlib = pytest.importorskip("routilux_stdlib")
        module = importlib.import_module(module_name)
        assert names == module.__all__
        for name in names:
            assert getattr(routilux_stdlib, name) is getattr(module, name)
        namespace: dict[str, object] = {}
        exec(f"from {module_name} import *", namespace)
        assert set(names) <= set(namespace)

    def test_package_exposes_all_builtins(self) -> None:
        """routilux.builtin_routines itself gives all eight."""
        routilux_stdlib = pytest.importorskip("routilux_stdlib")
        import routilux.builtin_routines as package

        assert BUILTINS == sorted(package.__all__)
        for name in BUILTINS:
            assert getattr(routilux_stdlib, name) is getattr(package, name)

    def test_other_names_are_missing(self) -> None:
        """A name a module does not provide is an AttributeError naming what it provides."""
        from routilux.builtin_routines import text_processing

        with pytest.raises(AttributeError, match="has no attribute 'DataValidator'") as info:
            text_processing.DataValidator  # noqa: B018
        assert "routilux.builtin_routines.text_processing" in str(info.value)
        assert "TextClipper" in str(info.value)
        with pytest.raises(ImportError, match="cannot import name 'Nope'"):
            exec("from routilux.builtin_routines.utils import Nope", {})

    @pytest.mark.parametrize("name", ["Nope", "nope", "Flowx"])
    def test_unknown_top_level_names_are_attribute_errors(self, name: str) -> None:
        """PEP 562: routilux.__getattr__ raises AttributeError for a name it does not know
        (so hasattr is False), whether or not it looks like a routine name."""
        import routilux

        assert not hasattr(routilux, name)
        with pytest.raises(AttributeError, match=f"has no attribute '{name}'"):
            getattr(routilux, name)

    def test_modules_import_without_loading_stdlib(self) -> None:
        """Importing the sub-modules loads routilux-stdlib only when a name is used."""
        pytest.importorskip("routilux_stdlib")
        out = run_python(
            """
            import sys
            import routilux.builtin_routines.text_processing as text_processing
            import routilux.builtin_routines.control_flow, routilux.builtin_routines.utils
            import routilux.builtin_routines.data_processing
            print("routilux_stdlib" in sys.modules)
            text_processing.TextClipper
            print("routilux_stdlib" in sys.modules)
            """
        )
        assert ["False", "True"] == out.split()


def test_slot_activation_task_fields() -> None:
    """SlotActivationTask has the original's eight fields; created_at defaults to now."""
    from routilux import Routine
    from routilux.flow import SlotActivationTask, TaskPriority

    assert [
        "slot",
        "data",
        "connection",
        "priority",
        "retry_count",
        "max_retries",
        "created_at",
        "job_state",
    ] == [f.name for f in dataclasses.fields(SlotActivationTask)]
    slot = Routine().define_slot("input")
    before = datetime.now()
    task = SlotActivationTask(slot, {"x": 1})
    assert task.created_at is not None and before <= task.created_at <= datetime.now()
    assert TaskPriority.NORMAL == task.priority
    given = datetime(2020, 1, 2)
    assert given == SlotActivationTask(slot, {}, created_at=given).created_at
    assert SlotActivationTask(slot, {}, priority=TaskPriority.HIGH) < task
