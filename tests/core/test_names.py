"""
The generic name registry behind routine types, callables and exception classes
(routilux.names._registry): names both ways, clashes, removal, lazy entry points.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable
from typing import Any

import pytest

from routilux.exceptions import RegistryError
from routilux.names._registry import Registry, module_level_name


GROUP = "tests.names"


def _missing(name: object) -> RegistryError:
    return RegistryError(f"nothing called {name!r}")


def make_registry(group: str | None = None) -> Registry[Any]:
    """A registry of callables, like the callable registry."""
    return Registry("thing", accepts=callable, accepted="callables", missing=_missing, group=group)


def first() -> None:
    """A module-level function."""


def second() -> None:
    """Another one."""


class Holder:
    """A class with a static method."""

    @staticmethod
    def helper() -> None:
        """A static method reachable by its qualified name."""


class TestRegistry:
    def test_names_both_ways(self) -> None:
        """An object is found by name, and its first name by the object."""
        reg = make_registry()
        reg.add("a", first)
        reg.add("b", first)
        assert first is reg.get("a")
        assert first is reg.require("b")
        assert "a" == reg.name_of(first)
        assert {"a": first, "b": first} == reg.as_dict()

    def test_adding_again_is_harmless(self) -> None:
        """The same object under its own name again changes nothing."""
        reg = make_registry()
        reg.add("a", first)
        reg.add("a", first)
        assert {"a": first} == reg.as_dict()

    def test_clash_names_both_objects(self) -> None:
        """Another object under a taken name is refused, naming both and the origin."""
        reg = make_registry()
        reg.add("a", first)
        with pytest.raises(RegistryError, match="is taken by") as info:
            reg.add("a", second, "a test")
        message = str(info.value)
        assert "thing name 'a'" in message
        assert "first" in message
        assert "second" in message
        assert "(a test)" in message

    @pytest.mark.parametrize(
        ("name", "obj", "match"), [("", first, "non-empty"), ("x", 5, "only callables")]
    )
    def test_refused(self, name: str, obj: object, match: str) -> None:
        """An empty name and an object of another kind are refused."""
        with pytest.raises(RegistryError, match=match):
            make_registry().add(name, obj)

    def test_unknown_name(self) -> None:
        """get gives None; require raises the registry's own error."""
        reg = make_registry()
        assert reg.get("nope") is None
        assert reg.get(42) is None
        with pytest.raises(RegistryError, match="nothing called 'nope'"):
            reg.require("nope")

    def test_remove_keeps_other_names(self) -> None:
        """Removing an object's first name leaves it known by its other name."""
        reg = make_registry()
        reg.add("a", first)
        reg.add("b", first)
        reg.remove("a")
        reg.remove("never")
        assert reg.get("a") is None
        assert "b" == reg.name_of(first)
        reg.remove("b")
        assert reg.name_of(first) is None

    def test_unhashable_objects_by_identity(self) -> None:
        """An unhashable callable object is named by identity."""

        class Unhashable:
            __hash__ = None  # type: ignore[assignment]

            def __call__(self) -> None:
                """Callable."""

        obj = Unhashable()
        reg = make_registry()
        reg.add("u", obj)
        assert "u" == reg.name_of(obj)
        assert reg.name_of(Unhashable()) is None
        reg.remove("u")
        assert reg.name_of(obj) is None

    def test_threads(self) -> None:
        """Registrations from many threads at once are all kept."""
        reg = make_registry()
        funcs = [lambda i=i: i for i in range(200)]
        threads = [threading.Thread(target=reg.add, args=(f"f{i}", f)) for i, f in enumerate(funcs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert 200 == len(reg.as_dict())
        assert all(f"f{i}" == reg.name_of(f) for i, f in enumerate(funcs))


class TestEntryPoints:
    @pytest.fixture
    def declared(self, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        """Declare ``json:dumps`` under ``dumps`` in GROUP; return the names looked up."""
        looked_up: list[str] = []
        eps = importlib.metadata.EntryPoints(
            [importlib.metadata.EntryPoint(name="dumps", value="json:dumps", group=GROUP)]
        )
        real = importlib.metadata.entry_points

        def entry_points(**kw: Any) -> Any:
            if kw.get("group") != GROUP:
                return real(**kw)
            looked_up.append(kw.get("name", "*"))
            return eps.select(**{k: v for k, v in kw.items() if k != "group"})

        monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
        return looked_up

    def test_loaded_when_asked(self, declared: list[str]) -> None:
        """A declared name is loaded on first use and registered; then it is known."""
        import json

        reg = make_registry(GROUP)
        assert json.dumps is reg.get("dumps")
        assert "dumps" == reg.name_of(json.dumps)
        assert json.dumps is reg.get("dumps")
        assert ["dumps"] == declared

    def test_unknown_and_no_group(self, declared: list[str]) -> None:
        """A name nobody declares is None; a registry without a group looks nowhere."""
        assert make_registry(GROUP).get("loads") is None
        assert make_registry().get("dumps") is None
        assert ["loads"] == declared

    def test_as_dict_loads_all(self, declared: list[str]) -> None:
        """as_dict loads every declared entry point."""
        reg = make_registry(GROUP)
        assert not reg.all_declared_loaded
        assert ["dumps"] == list(reg.as_dict())
        assert reg.all_declared_loaded


class TestModuleLevelName:
    @pytest.mark.parametrize(
        ("obj", "expected"),
        [
            (first, f"{__name__}:first"),
            (Holder, f"{__name__}:Holder"),
            (Holder.helper, f"{__name__}:Holder.helper"),
            (len, "builtins:len"),
        ],
    )
    def test_named(self, obj: Callable[..., Any], expected: str) -> None:
        """Functions, classes, static methods and builtins reachable by name have one."""
        assert expected == module_level_name(obj)

    def test_unnamed(self) -> None:
        """Lambdas, local functions, bound methods and instances have none."""

        def local() -> None:
            """Local."""

        for obj in (lambda: None, local, Holder().__init__, Holder()):
            assert module_level_name(obj) is None
