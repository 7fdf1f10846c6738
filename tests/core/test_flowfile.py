"""
Flow files (routilux.store._flowfile): reading hostile files, strict keys, config merged into
the routine's defaults, and entry routines whose id has a dot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from routilux import Routine
from routilux.exceptions import DeserializationError
from routilux.registry import get_routine_class, register_routine
from routilux.store import load_flow_file, read_flow_file


class _Greeter(Routine):
    """Sets two config defaults in its constructor: its config keys are declared."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(greeting="hello", punctuation="!")
        self.define_slot("trigger", self.go)
        self.define_event("said", ["text"])

    def go(self, name: str = "you", **_: Any) -> None:
        self.emit(
            "said", text=f"{self.get_config('greeting')} {name}{self.get_config('punctuation')}"
        )


class _Plain(Routine):
    """No config defaults: any key is accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", lambda **_: None)


for _cls, _name in ((_Greeter, "test_flowfile.Greeter"), (_Plain, "test_flowfile.Plain")):
    try:
        get_routine_class(_name)
    except LookupError:
        register_routine(_cls, name=_name)


def document(
    routines: dict[str, Any], connections: list[Any] | None = None, **top: Any
) -> dict[str, Any]:
    return {
        "format": "routilux.flow",
        "version": 1,
        "flow_id": "f",
        "routines": routines,
        "connections": connections or [],
        **top,
    }


def write(tmp_path: Path, data: dict[str, Any] | str, name: str = "flow.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


class TestHostileFiles:
    def test_deep_nesting_is_a_deserialization_error(self, tmp_path: Path) -> None:
        """A value nested 100,000 deep: DeserializationError naming the file, not RecursionError."""
        text = json.dumps(document({"g": {"type": "test_flowfile.Plain", "config": {"x": 0}}}))
        path = write(tmp_path, text.replace("0", "[" * 100_000 + "]" * 100_000, 1))
        with pytest.raises(DeserializationError) as info:
            read_flow_file(path)
        assert str(info.value).startswith(f"{path}: ")
        assert "nested too deeply" in str(info.value)

    def test_huge_integer_literal_names_its_path(self, tmp_path: Path) -> None:
        """A 5,000-digit integer: DeserializationError with the path of the field."""
        text = json.dumps(document({"g": {"type": "test_flowfile.Plain", "config": {"x": 7}}}))
        path = write(tmp_path, text.replace("7", "9" * 5000, 1))
        with pytest.raises(DeserializationError) as info:
            read_flow_file(path)
        assert "routines.g.config.x" == info.value.path
        assert str(info.value).startswith(f"{path}: routines.g.config.x: ")
        assert "5000 digits" in str(info.value)
        assert len(str(info.value)) < 300


class TestConfigMerge:
    def test_flow_file_config_merges_into_defaults(self, tmp_path: Path) -> None:
        """A flow file setting one config key keeps the routine's other defaults."""
        path = write(
            tmp_path,
            document({"g": {"type": "test_flowfile.Greeter", "config": {"greeting": "hi"}}}),
        )
        flow = load_flow_file(path)
        assert {"greeting": "hi", "punctuation": "!"} == flow.routines["g"].config()
        try:
            state = flow.execute("g", {"name": "ana"})
            said = [r.data for r in state.get_execution_history() if r.event_name == "said"]
        finally:
            flow.shutdown()
        assert [{"text": "hi ana!"}] == said

    def test_flow_deserialize_merges_into_defaults(self) -> None:
        """Flow.deserialize of a document with part of a config keeps the other defaults."""
        from routilux import Flow

        flow = Flow()
        flow.deserialize(
            document({"g": {"type": "test_flowfile.Greeter", "config": {"punctuation": "?"}}})
        )
        assert {"greeting": "hello", "punctuation": "?"} == flow.routines["g"].config()
