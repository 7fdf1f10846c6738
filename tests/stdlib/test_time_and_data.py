"""
TimeProvider, DataFlattener, DataTransformer and DataValidator with every config key.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest

from routilux.exceptions import ConfigurationError
from routilux_stdlib import (
    DataFlattener,
    DataTransformer,
    DataValidator,
    TimeProvider,
    time_provider,
)

from .conftest import capture


# 2024-01-01 12:00:00 UTC, a Monday.
FROZEN = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time_provider, "_clock", lambda: FROZEN)


def now(payload: dict[str, Any] | None = None, **config: Any) -> dict[str, Any]:
    r = TimeProvider()
    r.set_config(**config)
    got = capture(r, "output")
    r.trigger_slot.receive(payload or {})
    return got["output"][0]


@pytest.mark.usefixtures("frozen")
class TestTimeProvider:
    @pytest.mark.parametrize(
        ("config", "payload", "pattern"),
        [
            ({}, None, r"^2024-01-01T12:00:00\+00:00$"),
            ({"format": "timestamp"}, None, r"^1704110400\.0$"),
            ({"format": "custom"}, None, r"^2024-01-01 12:00:00$"),
            ({"format": "custom", "custom_format": "%d/%m"}, None, r"^01/01$"),
            ({"format": "formatted"}, None, r"^2024年01月01日\uff0c星期一\uff0c12:00:00$"),
            (
                {"format": "formatted", "locale": "en_US"},
                None,
                r"^Monday, January 01, 2024 12:00:00$",
            ),
            ({"format": "formatted", "include_weekday": False}, None, r"^2024-01-01 12:00:00$"),
            ({"format": "bogus"}, None, r"^2024-01-01T12:00:00\+00:00$"),
            ({}, {"format": "custom"}, r"^2024-01-01 12:00:00$"),
            ({}, {"data": {"format": "timestamp"}}, r"^1704110400\.0$"),
            ({"timezone": "+05:30", "format": "custom"}, None, r"^2024-01-01 17:30:00$"),
            ({"timezone": "Asia/Tokyo"}, None, r"^2024-01-01T21:00:00\+09:00$"),
        ],
    )
    def test_formats(
        self, config: dict[str, Any], payload: dict[str, Any] | None, pattern: str
    ) -> None:
        """
        Every format, from config, kwargs or data, in the configured timezone.
        """
        config.setdefault("timezone", "UTC")
        out = now(payload, **config)
        assert re.match(pattern, out["time_string"]), out["time_string"]
        assert FROZEN == out["timestamp"]

    def test_naive_by_default(self) -> None:
        """
        Without timezone the datetime is naive local time, as in the original.
        """
        out = now()
        assert datetime.fromisoformat(out["datetime"]).tzinfo is None

    @pytest.mark.parametrize("zone", ["UTC", "local", "Europe/Paris", "-03:00"])
    def test_aware_when_asked(self, zone: str) -> None:
        """
        With a timezone, the ISO strings carry an offset.
        """
        assert datetime.fromisoformat(now(timezone=zone)["datetime"]).tzinfo is not None

    def test_unknown_zone(self) -> None:
        """
        An unknown zone is a ConfigurationError.
        """
        with pytest.raises(ConfigurationError, match="Mars/Base"):
            _now_in("Mars/Base")


def _now_in(zone: str) -> Any:
    r = TimeProvider()
    r.set_config(timezone=zone)
    return r.now()


def flatten(value: Any, **config: Any) -> dict[str, Any]:
    r = DataFlattener()
    r.set_config(**config)
    got = capture(r, "output")
    r.input_slot.receive({"data": value})
    return got["output"][0]


class TestDataFlattener:
    @pytest.mark.parametrize(
        ("value", "config", "flat", "kind", "depth"),
        [
            ({"a": {"b": 1}}, {}, {"a.b": 1}, "dict", 2),
            ({"a": {"b": {"c": {"d": 1}}}}, {}, {"a.b.c.d": 1}, "dict", 4),
            ({"a": {"b": 1}}, {"separator": "_"}, {"a_b": 1}, "dict", 2),
            ({"items": [1, 2]}, {}, {"items.0": 1, "items.1": 2}, "dict", 2),
            ({"a": [1, 2]}, {"preserve_lists": False}, {"a": 2}, "dict", 2),
            ([5, 6], {}, {"0": 5, "1": 6}, "list", 1),
            (7, {}, {"value": 7}, "int", 0),
            ({"a": {}, "b": []}, {}, {}, "dict", 0),
            ({"a": {"b": {"c": 1}}}, {"max_depth": 1}, {"a": "{'b': {'c': 1}}"}, "dict", 1),
        ],
    )
    def test_table(
        self, value: Any, config: dict[str, Any], flat: dict[str, Any], kind: str, depth: int
    ) -> None:
        """
        separator, preserve_lists, max_depth, roots of every kind.
        """
        out = flatten(value, **config)
        assert (flat, kind, depth) == (out["flattened_data"], out["original_type"], out["depth"])

    def test_circular(self) -> None:
        """
        A container on its own path is marked instead of recursing.
        """
        loop: dict[str, Any] = {}
        loop["me"] = loop
        assert {"me": "[Circular Reference]"} == flatten(loop)["flattened_data"]


def double(value: Any) -> Any:
    return value * 2


def transform(
    value: Any, payload_extra: dict[str, Any] | None = None, **config: Any
) -> dict[str, Any]:
    r = DataTransformer()
    r.set_config(**config)
    got = capture(r, "output")
    r.input_slot.receive({"data": value, **(payload_extra or {})})
    return got["output"][0]


class TestDataTransformer:
    @pytest.mark.parametrize(
        ("value", "transformations", "result", "errors"),
        [
            ("  Hi ", ["strip_whitespace", "lowercase"], "hi", None),
            ("  Hi ", ["strip", "uppercase"], "HI", None),
            (5, ["to_string"], "5", None),
            ("42", ["to_int"], 42, None),
            ("4.5", ["to_float"], 4.5, None),
            ({"a": None, "b": 1}, ["remove_none"], {"b": 1}, None),
            (3, ["lowercase"], 3, None),
            ("x", ["nope"], "x", ["Unknown transformation: nope"]),
            ("x", [42], "x", ["Invalid transformation: 42"]),
            (
                "not_a_number",
                ["to_int"],
                "not_a_number",
                ["Error applying to_int: invalid literal for int() with base 10: 'not_a_number'"],
            ),
            (2, [double, "to_string"], "4", None),
        ],
    )
    def test_table(
        self, value: Any, transformations: list[Any], result: Any, errors: list[str] | None
    ) -> None:
        """
        Built-ins (strip is an alias of strip_whitespace), callables, and error strings.
        """
        out = transform(value, transformations=transformations)
        assert result == out["transformed_data"]
        assert errors == out["errors"]

    def test_input_overrides_config(self) -> None:
        """
        Transformations in the input win over the config when non-empty.
        """
        out = transform("A", {"transformations": ["lowercase"]}, transformations=["uppercase"])
        assert ("a", ["lowercase"]) == (out["transformed_data"], out["transformation_applied"])

    def test_chain_off(self) -> None:
        """
        chain_transformations=False applies each to the original input.
        """
        out = transform(" A ", transformations=["strip", "lowercase"], chain_transformations=False)
        assert {"strip": "A", "lowercase": " a "} == out["transformed_data"]

    def test_register_transformation(self) -> None:
        """
        A registered transformation is found by name in transformation_map.
        """
        r = DataTransformer()
        r.register_transformation("double", double)
        r.set_config(transformations=["double"])
        got = capture(r, "output")
        r.input_slot.receive({"data": 21})
        assert 42 == got["output"][0]["transformed_data"]
        assert {"double": double} == r.get_config("transformation_map")


def validate(value: Any, **config: Any) -> tuple[str, dict[str, Any]]:
    r = DataValidator()
    r.register_validator("is_even", lambda v: v % 2 == 0)
    r.set_config(**config)
    got = capture(r, "valid", "invalid")
    r.input_slot.receive({"data": value})
    if got["valid"]:
        return "valid", got["valid"][0]
    return "invalid", got["invalid"][0]


class TestDataValidator:
    @pytest.mark.parametrize(
        ("value", "config", "outcome", "errors"),
        [
            ({"name": "bob"}, {"rules": {"name": "is_string"}}, "valid", []),
            (
                {"name": 1},
                {"rules": {"name": "is_string"}},
                "invalid",
                ["Field 'name' failed validation"],
            ),
            ({}, {"required_fields": ["id"]}, "invalid", ["Required field 'id' is missing"]),
            ({"x": 1}, {"allow_extra_fields": False}, "invalid", ["Unexpected field 'x'"]),
            ({"x": 1}, {"rules": {"x": "nope"}}, "invalid", ["Unknown validator: nope"]),
            ({"x": 1}, {"rules": {"x": 5}}, "invalid", ["Invalid validator for field 'x'"]),
            (
                {"x": 1},
                {"rules": {"x": lambda v: (False, "custom msg")}},
                "invalid",
                ["custom msg"],
            ),
            (
                {"x": 1},
                {"rules": {"x": lambda v: 1 / 0}},
                "invalid",
                ["Validation error for field 'x': division by zero"],
            ),
            ({"x": 4}, {"rules": {"x": "is_even"}}, "valid", []),
            (
                [1, -2, -3],
                {"rules": {"items": "is_positive"}},
                "invalid",
                ["Field 'items[1]' failed validation", "Field 'items[2]' failed validation"],
            ),
            (
                [1, -2, -3],
                {"rules": {"items": "is_positive"}, "strict_mode": True},
                "invalid",
                ["Field 'items[1]' failed validation"],
            ),
            (
                {"a": 1, "b": 2},
                {"required_fields": ["c", "d"], "strict_mode": True},
                "invalid",
                ["Required field 'c' is missing"],
            ),
            (
                {"age": -1, "x": 1},
                {
                    "required_fields": ["name", "z"],
                    "rules": {"age": "is_positive"},
                    "strict_mode": True,
                },
                "invalid",
                ["Required field 'name' is missing", "Field 'age' failed validation"],
            ),
            (5, {"rules": {"value": "is_non_negative"}}, "valid", []),
            ("", {"rules": {"value": "not_empty"}}, "invalid", ["Field 'value' failed validation"]),
            (True, {"rules": {"value": "is_int"}}, "valid", []),
            (1.5, {"rules": {"value": "is_float"}}, "valid", []),
            ([], {"rules": {"value": "is_list"}}, "valid", []),
            ({}, {"rules": {"value": "is_dict"}}, "valid", []),
            (3, {"rules": {"value": "is_number"}}, "valid", []),
        ],
    )
    def test_table(
        self, value: Any, config: dict[str, Any], outcome: str, errors: list[str]
    ) -> None:
        """
        rules, strict_mode, required_fields, allow_extra_fields and every built-in validator.
        """
        kind, out = validate(value, **config)
        assert outcome == kind
        if kind == "invalid":
            assert errors == out["errors"]
            assert value == out["data"]
        else:
            assert value == out["validated_data"]

    def test_builtin_validators_attribute(self) -> None:
        """
        _builtin_validators (the 0.9 attribute) maps every name a rule can use to the
        validator it runs, registered ones included, and cannot be changed through it.
        """
        r = DataValidator()
        even = lambda v: v % 2 == 0  # noqa: E731
        r.register_validator("is_even", even)
        r.register_validator("is_int", even)
        validators = r._builtin_validators
        assert {
            "not_empty",
            "is_string",
            "is_int",
            "is_float",
            "is_number",
            "is_dict",
            "is_list",
            "is_positive",
            "is_non_negative",
            "is_even",
        } == set(validators)
        assert even is validators["is_int"]
        assert ["Field 'x' failed validation"] == r.validate({"x": 3}, {"x": "is_int"})
        assert validators["is_positive"](1) and not validators["is_positive"](0)
        with pytest.raises(TypeError):
            validators["mine"] = even  # type: ignore[index]
