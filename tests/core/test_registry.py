"""
The routine registry: registration, name clashes, lookup, listing and lazy entry points.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from routilux import Flow, Routine
from routilux.exceptions import DeserializationError, RegistryError, UnknownRoutineTypeError
from routilux.registry import (
    ENTRY_POINT_GROUP,
    get_routine_class,
    is_registered,
    list_routines,
    register_routine,
    routine_type_name,
    unregister_routine,
)


class Alpha(Routine):
    """A routine class registered by the tests."""


class Beta(Routine):
    """Another one."""


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Names to unregister after the test."""
    created: list[str] = []
    yield created
    for name in created:
        unregister_routine(name)


class TestRegistration:
    def test_direct_call(self, names: list[str]) -> None:
        """register_routine(cls) registers under the class name and returns the class."""
        names.append("Alpha")
        assert Alpha is register_routine(Alpha)
        assert Alpha is get_routine_class("Alpha")
        assert "Alpha" == routine_type_name(Alpha)

    def test_register_serializable_of_the_original(self, names: list[str]) -> None:
        """routilux.job_state.register_serializable registers a routine by class name; any
        other class comes back unchanged, with a warning that it is not registered."""
        from routilux.exceptions import RoutiluxWarning
        from routilux.job_state import register_serializable

        names.append("Beta")
        assert Beta is register_serializable(Beta)
        assert Beta is get_routine_class("Beta")

        class Helper:
            pass

        with pytest.warns(RoutiluxWarning, match="only Routine subclasses"):
            assert Helper is register_serializable(Helper)
        with pytest.raises(UnknownRoutineTypeError):
            get_routine_class("Helper")

    def test_decorator_with_and_without_name(self, names: list[str]) -> None:
        """The decorator works bare and with a name."""
        names.extend(["Gamma", "acme.Delta"])

        @register_routine
        class Gamma(Routine):
            pass

        @register_routine(name="acme.Delta")
        class Delta(Routine):
            pass

        assert Gamma is get_routine_class("Gamma")
        assert Delta is get_routine_class("acme.Delta")
        assert "acme.Delta" == routine_type_name(Delta)

    def test_same_class_twice_is_harmless(self, names: list[str]) -> None:
        """Registering the same class under the same name again changes nothing."""
        names.append("tests.alpha")
        register_routine(Alpha, name="tests.alpha")
        register_routine(Alpha, name="tests.alpha")
        assert Alpha is get_routine_class("tests.alpha")

    def test_two_classes_one_name(self, names: list[str]) -> None:
        """A second class under a taken name is an error that names both classes."""
        names.append("tests.clash")
        register_routine(Alpha, name="tests.clash")
        with pytest.raises(RegistryError) as info:
            register_routine(Beta, name="tests.clash")
        message = str(info.value)
        assert "Alpha" in message
        assert "Beta" in message
        assert "tests.clash" in message
        assert Alpha is get_routine_class("tests.clash")

    @pytest.mark.parametrize("bad", [int, object(), "Alpha"])
    def test_only_routines(self, bad: object) -> None:
        """Only Routine subclasses can be registered."""
        with pytest.raises(RegistryError):
            register_routine(bad, name="tests.bad")  # type: ignore[call-overload]

    def test_base_routine_is_registered(self) -> None:
        """The base Routine is registered."""
        assert Routine is get_routine_class("Routine")


class TestLookup:
    def test_unknown_name(self) -> None:
        """An unknown name raises a LookupError that says how to register."""
        with pytest.raises(UnknownRoutineTypeError, match="register_routine") as info:
            get_routine_class("tests.nope")
        assert isinstance(info.value, LookupError)
        assert "tests.nope" == info.value.name
        assert not is_registered("tests.nope")

    def test_listing(self, names: list[str]) -> None:
        """list_routines returns every registered name."""
        names.append("tests.listed")
        register_routine(Beta, name="tests.listed")
        listed = list_routines()
        assert Beta is listed["tests.listed"]
        assert Routine is listed["Routine"]
        assert is_registered("tests.listed")

    def test_unregister(self) -> None:
        """unregister_routine forgets the name."""
        register_routine(Beta, name="tests.gone")
        unregister_routine("tests.gone")
        assert not is_registered("tests.gone")

    def test_flow_loads_registered_user_class(self, names: list[str]) -> None:
        """A user's class registered in one line is enough to load a flow."""
        names.append("tests.user.Alpha")
        register_routine(Alpha, name="tests.user.Alpha")
        flow = Flow(flow_id="u")
        flow.add_routine(Alpha(), "a")
        data = flow.serialize()
        assert "tests.user.Alpha" == data["routines"]["a"]["type"]
        loaded = Flow()
        loaded.deserialize(data)
        assert Alpha is type(loaded.routines["a"])


ENTRY_MODULE = """
import pathlib
from routilux import Routine

pathlib.Path({marker!r}).write_text("imported")


class FromEntryPoint(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger")
"""


@pytest.fixture
def entry_point_dist(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A tiny installed distribution declaring one routine in routilux.routines."""
    marker = tmp_path / "imported.txt"
    module = "tests_ep_routines_mod"
    name = "tests.ep.FromEntryPoint"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(ENTRY_MODULE.format(marker=str(marker))))
    dist = tmp_path / "tests_ep_routines-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tests-ep-routines\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{name} = {module}:FromEntryPoint\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield name, marker
    sys.path.remove(str(tmp_path))
    sys.modules.pop(module, None)
    unregister_routine(name)


class TestEntryPoints:
    def test_lazy_discovery(self, entry_point_dist: tuple[str, Path]) -> None:
        """A declared routine is imported only when its name is looked up."""
        name, marker = entry_point_dist
        assert not marker.exists()
        cls = get_routine_class(name)
        assert marker.exists()
        assert "FromEntryPoint" == cls.__name__
        assert name == routine_type_name(cls)

    def test_flow_loading_uses_entry_points(self, entry_point_dist: tuple[str, Path]) -> None:
        """A flow document naming a declared routine loads it through the entry point."""
        name, marker = entry_point_dist
        data = {
            "format": "routilux.flow",
            "version": 1,
            "flow_id": "ep",
            "routines": {"r": {"type": name}},
        }
        flow = Flow()
        flow.deserialize(data)
        assert name == routine_type_name(type(flow.routines["r"]))
        assert marker.exists()

    def test_listing_loads_declared(self, entry_point_dist: tuple[str, Path]) -> None:
        """list_routines loads the declared entry points too."""
        name, _ = entry_point_dist
        assert name in list_routines()

    def test_unknown_in_document(self, entry_point_dist: tuple[str, Path]) -> None:
        """A name that no entry point declares is a DeserializationError with its path."""
        _, marker = entry_point_dist
        data = {
            "format": "routilux.flow",
            "version": 1,
            "flow_id": "ep",
            "routines": {"r": {"type": "tests_ep_routines_mod:FromEntryPoint"}},
        }
        with pytest.raises(DeserializationError) as info:
            Flow().deserialize(data)
        assert "routines.r.type" == info.value.path
        assert not marker.exists()
