"""
TextClipper and TextRenderer on their own (slot.receive) with every config key.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux_stdlib import TextClipper, TextRenderer

from .conftest import capture


def clip(payload: dict[str, Any], **config: Any) -> dict[str, Any]:
    r = TextClipper()
    r.set_config(**config)
    got = capture(r, "output")
    r.input_slot.receive(payload)
    (out,) = got["output"]
    return out


LONG = "\n".join(f"line {i:02d}" for i in range(20))


class TestTextClipper:
    @pytest.mark.parametrize(
        ("payload", "text"),
        [
            ({"text": "hello"}, "hello"),
            ({"data": "hello"}, "hello"),
            ({"data": {"content": "c", "x": 1}}, "c"),
            ({"data": {"message": "m"}}, "m"),
            ({"data": {"data": "d"}}, "d"),
            ({"data": {"a": 1, "b": "first string"}}, "first string"),
            ({"data": {"a": 1}}, "{'a': 1}"),
            ({"data": 12345}, "12345"),
            ({"content": "only key"}, "only key"),
        ],
    )
    def test_text_resolution(self, payload: dict[str, Any], text: str) -> None:
        """
        Text comes from text, data (the original's crash is fixed) or a dict's text keys.
        """
        out = clip(payload)
        assert text == out["clipped_text"]
        assert out["was_clipped"] is False
        assert len(text) == out["original_length"]

    def test_clips_whole_lines_with_message(self) -> None:
        """
        Lines are kept while they fit; the message counts the rest.
        """
        out = clip({"text": LONG}, max_length=50)
        assert out["was_clipped"] is True
        kept = out["clipped_text"].split("\n")[:-1]
        assert ["line 00", "line 01", "line 02", "line 03", "line 04", "line 05"] == kept
        assert "...(省略了14行)" == out["clipped_text"].split("\n")[-1]
        assert len(LONG) == out["original_length"]

    @pytest.mark.parametrize(
        ("config", "payload", "clipped"),
        [
            ({"max_length": 1000}, {"text": LONG}, False),
            ({"max_length": 10}, {"text": LONG, "max_length": 1000}, False),
            ({"max_length": 1000}, {"text": LONG, "max_length": 10}, True),
            ({"max_length": 10, "preserve_tracebacks": True}, {"text": "Traceback " + LONG}, False),
            ({"max_length": 10, "preserve_tracebacks": False}, {"text": "Traceback " + LONG}, True),
            ({"max_length": 10}, {"text": ""}, False),
        ],
    )
    def test_config_keys(
        self, config: dict[str, Any], payload: dict[str, Any], clipped: bool
    ) -> None:
        """
        max_length (per call wins when truthy) and preserve_tracebacks.
        """
        assert clipped == clip(payload, **config)["was_clipped"]

    def test_truncation_message(self) -> None:
        """
        truncation_message is formatted with the number of omitted lines.
        """
        out = clip({"text": LONG}, max_length=20, truncation_message="[{remaining} more]")
        assert out["clipped_text"].endswith("[18 more]")

    def test_single_long_line(self) -> None:
        """
        A single line longer than the limit leaves only the message.
        """
        out = clip({"text": "x" * 100}, max_length=10, truncation_message="({remaining})")
        assert "\n(1)" == out["clipped_text"]


def render(value: Any, **config: Any) -> dict[str, Any]:
    r = TextRenderer()
    r.set_config(**config)
    got = capture(r, "output")
    r.input_slot.receive({"data": value})
    return got["output"][0]


class TestTextRenderer:
    @pytest.mark.parametrize(
        ("value", "config", "text"),
        [
            ({"name": "test", "value": 42}, {}, "<name>test</name>\n<value>42</value>"),
            ({"a": {"b": 1, "c": 2}}, {}, "<a>  <b>1</b>\n  <c>2</c></a>"),
            (["x", "y"], {}, "<item_0>x</item_0>\n<item_1>y</item_1>"),
            ("test", {}, "test"),
            ({}, {}, ""),
            ({"name": "t"}, {"tag_format": "markdown"}, "**name**: t"),
            (["x"], {"tag_format": "md"}, "- x"),
            ({"a": {"b": 1}}, {"indent": "\t"}, "<a>\t<b>1</b></a>"),
            ({"n": 1}, {"include_type_hints": True}, '<n type="int">1</n>'),
            ({"n": 1}, {"include_type_hints": True, "tag_format": "markdown"}, "**n** (int): 1"),
            ([1], {"include_type_hints": True, "tag_format": "markdown"}, "- (int) 1"),
        ],
    )
    def test_rendering(self, value: Any, config: dict[str, Any], text: str) -> None:
        """
        XML-like tags or markdown, indent per level, optional type hints.
        """
        out = render(value, **config)
        assert text == out["rendered_text"]
        assert type(value).__name__ == out["original_type"]

    def test_circular_reference(self) -> None:
        """
        A container on its own path renders as a marker instead of recursing forever.
        """
        loop: dict[str, Any] = {"a": 1}
        loop["self"] = loop
        assert "[Circular Reference]" in render(loop)["rendered_text"]
