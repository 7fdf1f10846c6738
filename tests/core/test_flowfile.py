"""
Flow files (routilux.persist._flowfile): reading hostile files, strict keys, config merged into
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
        self.define_slot("input", self.take)

    def take(self, **_: Any) -> None:
        """Take anything."""


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


def _connected(**connection_changes: Any) -> dict[str, Any]:
    connection = {
        "source_routine_id": "g",
        "source_event": "said",
        "target_routine_id": "p",
        "target_slot": "input",
        **connection_changes,
    }
    return document(
        {"g": {"type": "test_flowfile.Greeter"}, "p": {"type": "test_flowfile.Plain"}},
        [connection],
    )


class TestUnknownKeys:
    @pytest.mark.parametrize(
        ("data", "path", "hint"),
        [
            (
                {**document({"g": {"type": "test_flowfile.Greeter"}}), "conections": []},
                "conections",
                "did you mean 'connections'?",
            ),
            (
                document({"g": {"type": "test_flowfile.Greeter", "confg": {"greeting": "x"}}}),
                "routines.g.confg",
                "did you mean 'config'?",
            ),
            (
                _connected(param_maping={"text": "text"}),
                "connections[0].param_maping",
                "did you mean 'param_mapping'?",
            ),
            (
                document({"g": {"type": "test_flowfile.Greeter", "config": {"greting": "x"}}}),
                "routines.g.config.greting",
                "did you mean 'greeting'?",
            ),
            (
                document(
                    {"g": {"type": "test_flowfile.Greeter"}},
                    error_handler={"strategy": "retry", "max_retrys": 2},
                ),
                "error_handler.max_retrys",
                "did you mean 'max_retries'?",
            ),
            (
                document(
                    {
                        "g": {
                            "type": "test_flowfile.Greeter",
                            "slots": [
                                {"name": "extra", "merge_strategy": "append", "hndler": None}
                            ],
                        }
                    }
                ),
                "routines.g.slots[0].hndler",
                "did you mean 'handler'?",
            ),
            (
                {**document({"g": {"type": "test_flowfile.Greeter"}}), "zzz": 1},
                "zzz",
                "expected one of: ",
            ),
        ],
        ids=[
            "top-level",
            "routine",
            "connection",
            "config-key",
            "error-handler",
            "slot",
            "no-close-match",
        ],
    )
    def test_misspelt_key_is_refused_with_a_suggestion(
        self, tmp_path: Path, data: dict[str, Any], path: str, hint: str
    ) -> None:
        """An unknown key in a flow file is a DeserializationError with its path and a hint."""
        file = write(tmp_path, data)
        with pytest.raises(DeserializationError) as info:
            load_flow_file(file)
        assert path == info.value.path
        assert str(info.value).startswith(f"{file}: {path}: unknown ")
        assert hint in str(info.value)

    def test_routine_without_config_defaults_takes_any_key(self, tmp_path: Path) -> None:
        """A routine whose constructor sets no config accepts any config key."""
        file = write(tmp_path, document({"p": {"type": "test_flowfile.Plain", "config": {"x": 1}}}))
        assert {"x": 1} == load_flow_file(file).routines["p"].config()

    def test_open_config_takes_any_key(self, tmp_path: Path) -> None:
        """A routine class with open_config = True accepts keys beyond its defaults."""

        class Open(_Greeter):
            open_config = True

        register_routine(Open, name="test_flowfile.Open")
        try:
            file = write(
                tmp_path, document({"o": {"type": "test_flowfile.Open", "config": {"x": 1}}})
            )
            assert 1 == load_flow_file(file).routines["o"].get_config("x")
        finally:
            from routilux.registry import unregister_routine

            unregister_routine("test_flowfile.Open")

    def test_serialized_flow_is_a_valid_flow_file(self, tmp_path: Path) -> None:
        """What Flow.serialize() writes loads as a flow file (every key is known)."""
        from routilux import Flow

        flow = Flow()
        flow.deserialize(_connected(param_mapping={"text": "text"}))
        file = write(tmp_path, flow.serialize())
        assert flow.serialize() == load_flow_file(file).serialize()

    def test_flow_deserialize_stays_tolerant(self) -> None:
        """Flow.deserialize ignores fields a document does not define, and any config key."""
        from routilux import Flow

        data = document({"g": {"type": "test_flowfile.Greeter", "config": {"greting": "x"}}})
        data["conections"] = []
        data["routines"]["g"]["confg"] = {}
        flow = Flow()
        flow.deserialize(data)
        assert "x" == flow.routines["g"].get_config("greting")


class TestDottedRoutineIds:
    @pytest.fixture
    def flow(self, tmp_path: Path) -> Any:
        routines = {
            "a": {"type": "test_flowfile.Greeter"},
            "text.clip": {"type": "test_flowfile.Plain"},
            "a.b": {"type": "test_flowfile.Plain"},
        }
        return load_flow_file(write(tmp_path, document(routines)))

    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            ("text.clip", ("text.clip", "input")),
            ("text.clip.input", ("text.clip", "input")),
            ("a", ("a", "trigger")),
            ("a.trigger", ("a", "trigger")),
            ("a.b", ("a.b", "input")),
            ("a.b.input", ("a.b", "input")),
        ],
    )
    def test_entry_is_read_from_the_right(
        self, flow: Any, entry: str, expected: tuple[str, str]
    ) -> None:
        """--entry is a routine id when it is one, else ID.SLOT split at the last dot."""
        from routilux.persist._flowfile import pick_entry

        assert expected == pick_entry(flow, entry)

    @pytest.mark.parametrize(
        ("entry", "error", "fragment"),
        [
            ("text.nope", "RoutineNotFoundError", "entry routine 'text.nope' not found"),
            ("text.clip.nope", "SlotNotFoundError", "'text.clip' has no slot 'nope'"),
        ],
    )
    def test_unknown_entry(self, flow: Any, entry: str, error: str, fragment: str) -> None:
        """An entry that is neither a routine nor ROUTINE.SLOT names what was given."""
        from routilux import exceptions
        from routilux.persist._flowfile import pick_entry

        with pytest.raises(getattr(exceptions, error), match=fragment):
            pick_entry(flow, entry)


class TestNotUnicode:
    @pytest.mark.parametrize(
        ("old", "new", "path"),
        [('"f"', '"\\ud800"', "flow_id"), ('"greeting"', '"gr\\udc00"', "routines.g.config")],
        ids=["value", "key"],
    )
    def test_lone_surrogate_is_refused_with_its_path(
        self, tmp_path: Path, old: str, new: str, path: str
    ) -> None:
        """A \\ud800 escape (half a UTF-16 pair) cannot be stored: refused with its path."""
        text = json.dumps(
            document({"g": {"type": "test_flowfile.Greeter", "config": {"greeting": "x"}}})
        )
        file = write(tmp_path, text.replace(old, new, 1))
        with pytest.raises(DeserializationError) as info:
            read_flow_file(file)
        assert str(info.value).startswith(f"{file}: ")
        assert "surrogate" in str(info.value)
        assert info.value.path.startswith(path)
