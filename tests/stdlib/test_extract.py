"""
ResultExtractor: extractors, their order, strategies and every config key.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux_stdlib import ExtractionError, ResultExtractor

from .conftest import capture


def extract(value: Any, **config: Any) -> dict[str, Any]:
    r = ResultExtractor()
    r.set_config(**config)
    got = capture(r, "output")
    r.input_slot.receive({"data": value})
    (out,) = got["output"]
    return out


JSON_BLOCK = 'text\n```json\n{"a": 1}\n```\nmore ```json\n{"b": 2}\n```'


class TestExtractors:
    @pytest.mark.parametrize(
        ("value", "config", "result", "fmt", "extractor"),
        [
            (JSON_BLOCK, {}, {"b": 2}, "json", "json_code_block"),
            ("```{JSON}\n[1, 2]\n```", {}, [1, 2], "json", "json_code_block"),
            ('  {"k": "v"} ', {}, {"k": "v"}, "json", "json_string"),
            ('{"k": "v"}', {"parse_json_strings": False}, '{"k": "v"}', "str", None),
            (JSON_BLOCK, {"extract_json_blocks": False}, JSON_BLOCK, "str", None),
            ("```python\nprint(1)\n```", {}, "print(1)", "python", "code_block"),
            (
                "```python\nprint(1)\n```",
                {"extract_code_blocks": False},
                "```python\nprint(1)\n```",
                "str",
                None,
            ),
            (
                "```output\nhi\n```",
                {"code_block_languages": ["python"]},
                "```output\nhi\n```",
                "str",
                None,
            ),
            ("```xml\n<a/>\n```", {"extract_xml_blocks": True}, "<a/>", "xml", "xml_code_block"),
            ("```xml\n<a/>\n```", {"code_block_languages": []}, "```xml\n<a/>\n```", "str", None),
            (
                [
                    {"format": "output", "content": "Hello"},
                    {"format": "code", "content": "x"},
                    "World",
                    {"format": "output", "content": "  "},
                ],
                {},
                "Hello\nWorld",
                "interpreter_output",
                "interpreter_output",
            ),
            (
                [{"format": "output", "content": "Hello"}],
                {"format_interpreter_output": False},
                [{"format": "output", "content": "Hello"}],
                "list",
                "list_extractor",
            ),
            ({"x": 1}, {}, {"x": 1}, "dict", "dict_extractor"),
            ({"x": '{"y": 2}'}, {}, {"x": {"y": 2}}, "dict", "dict_extractor"),
            (
                {"x": '{"y": 2}'},
                {"detect_nested_structures": False},
                {"x": '{"y": 2}'},
                "dict",
                "dict_extractor",
            ),
            ([1, "[2]"], {}, [1, [2]], "list", "list_extractor"),
            ("plain text", {}, "plain text", "str", None),
        ],
    )
    def test_table(
        self, value: Any, config: dict[str, Any], result: Any, fmt: str, extractor: str | None
    ) -> None:
        """
        Each built-in extractor and the flag that turns it off.
        """
        out = extract(value, **config)
        assert result == out["extracted_result"]
        assert fmt == out["format"]
        assert ([extractor] if extractor else []) == out["extraction_path"]
        if extractor:
            assert extractor == out["metadata"]["extractor"]

    def test_json_block_confidence(self) -> None:
        """
        A JSON block scores 0.9; the original on failure scores 0.0.
        """
        assert 0.9 == extract(JSON_BLOCK)["confidence"]
        assert 0.0 == extract("nothing")["confidence"]

    @pytest.mark.parametrize("payload", [{}, {"data": {}}])
    def test_empty_input_is_extracted_as_empty_string(self, payload: dict[str, Any]) -> None:
        """
        An empty input (no data at all, or {}) is taken as "": nothing matches, so the
        output is the failure result.
        """
        r = ResultExtractor()
        got = capture(r, "output")
        r.input_slot.receive(payload)
        (out,) = got["output"]
        assert "" == out["extracted_result"]
        assert "str" == out["format"]
        assert 0.0 == out["confidence"]
        assert [] == out["extraction_path"]
        assert {"extraction_method": "none", "errors": [], "original_type": "str"} == out[
            "metadata"
        ]

    def test_extracted_empty_object_is_kept(self) -> None:
        """
        A json block holding {} gives {} (not ""), scored as an empty json block result.
        """
        out = extract("```json\n{}\n```")
        assert {} == out["extracted_result"]
        assert "json" == out["format"]
        assert ["json_code_block"] == out["extraction_path"]
        assert 0.6 == out["confidence"]

    def test_yaml_flags_without_pyyaml_are_harmless(self) -> None:
        """
        YAML extraction only applies when PyYAML is importable.
        """
        out = extract(
            "```yaml\na: 1\n```",
            extract_yaml_blocks=True,
            parse_yaml_strings=True,
            code_block_languages=[],
        )
        assert out["format"] in ("yaml", "str")


class TestOrderAndStrategies:
    def test_custom_extractor_runs_before_generic_dict(self) -> None:
        """
        A custom extractor wins over dict_extractor without being prioritised (fixed defect).
        """
        r = ResultExtractor()
        r.register_extractor(
            "mine", lambda d, c: ("custom", "mine", {}) if isinstance(d, dict) else None
        )
        got = capture(r, "output")
        r.input_slot.receive({"data": {"a": 1}})
        assert "custom" == got["output"][0]["extracted_result"]
        assert ["mine"] == got["output"][0]["extraction_path"]

    def test_extractor_priority(self) -> None:
        """
        Listed names go first, in list order.
        """
        r = ResultExtractor()
        r.set_config(extractor_priority=["json_string", "code_block"])
        names = [n for n, _ in r.extractors()]
        assert ["json_string", "code_block"] == names[:2]
        assert names[-2:] == ["dict_extractor", "list_extractor"]

    def test_extractors_attribute(self) -> None:
        """
        _extractors (the 0.9 attribute) maps each name to the extractor tried under it,
        custom ones included, and cannot be changed through it.
        """
        r = ResultExtractor()

        def mine(d: Any, c: Any) -> None:
            return None

        r.register_extractor("mine", mine)
        extractors = r._extractors
        assert [n for n, _ in r.extractors()] == list(extractors)
        assert {"json_code_block", "code_block", "dict_extractor", "mine"} <= set(extractors)
        assert mine is extractors["mine"]
        assert ([1], "json", {"extraction_method": "json_string"}) == extractors["json_string"](
            "[1]", r.config()
        )
        with pytest.raises(TypeError):
            extractors["other"] = mine  # type: ignore[index]

    def test_all_strategy(self) -> None:
        """
        strategy=all collects every success.
        """
        out = extract('```json\n{"a": 1}\n```\n```python\nx\n```', strategy="all")
        assert "multi" == out["format"]
        assert [{"a": 1}, "x"] == out["extracted_result"]
        assert ["json_code_block", "code_block"] == out["extraction_path"]
        assert 2 == out["metadata"]["count"]

    @pytest.mark.parametrize("strategy", ["auto", "first_match", "priority"])
    def test_first_success_strategies(self, strategy: str) -> None:
        """
        auto, first_match and priority all return the first success.
        """
        out = extract(JSON_BLOCK, strategy=strategy)
        assert strategy == out["metadata"]["strategy"]
        assert {"b": 2} == out["extracted_result"]

    @pytest.mark.parametrize(
        ("continue_on_error", "path"), [(True, ["dict_extractor"]), (False, [])]
    )
    def test_errors(self, continue_on_error: bool, path: list[str]) -> None:
        """
        Extractor errors are collected; continue_on_error decides whether others still run.
        """
        r = ResultExtractor()
        r.set_config(
            continue_on_error=continue_on_error, log_errors=False, extractor_priority=["boom"]
        )

        def boom(d: Any, c: Any) -> None:
            raise RuntimeError("bad")

        r.register_extractor("boom", boom)
        got = capture(r, "output")
        r.input_slot.receive({"data": {"a": 1}})
        out = got["output"][0]
        assert path == out["extraction_path"]
        if not continue_on_error:
            assert [{"extractor": "boom", "error": "bad"}] == out["metadata"]["errors"]

    def test_log_errors(self, caplog: pytest.LogCaptureFixture) -> None:
        """
        log_errors logs a warning on the routilux_stdlib logger.
        """
        r = ResultExtractor()
        r.register_extractor("boom", lambda d, c: 1 / 0)
        with caplog.at_level("WARNING", logger="routilux_stdlib"):
            r.extract("x")
        assert any("boom" in rec.getMessage() for rec in caplog.records)

    def test_no_original_on_failure(self) -> None:
        """
        Without return_original_on_failure, nothing matching is an ExtractionError.
        """
        r = ResultExtractor()
        r.set_config(return_original_on_failure=False)
        with pytest.raises(ExtractionError):
            r.extract("plain")
