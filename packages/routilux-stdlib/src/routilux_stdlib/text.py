"""
Text routines: TextClipper (shorten long text by whole lines) and TextRenderer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routilux import Routine


__all__ = ["TextClipper", "TextRenderer"]

_TEXT_KEYS = ("text", "content", "message", "data")


def _resolve_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in _TEXT_KEYS:
            if isinstance(value.get(key), str):
                return str(value[key])
        for item in value.values():
            if isinstance(item, str):
                return item
    return str(value)


class TextClipper(Routine):
    """
    Clip long text to a maximum length, keeping whole lines and saying how many were left out.

    Slot ``input`` takes ``text`` (or ``data``, or a dict with a ``text``, ``content``,
    ``message`` or ``data`` string) and an optional per-call ``max_length``. Event
    ``output`` carries ``clipped_text``, ``was_clipped`` and ``original_length``.

    Config:
        max_length (int): The limit (1000).
        preserve_tracebacks (bool): Never clip text that contains ``"Traceback"`` (True).
        truncation_message (str): Appended after the kept lines; ``{remaining}`` is the
            number of lines left out (``"...(省略了{remaining}行)"``).

    .. versionchanged:: 0.10
       Input with a ``data`` key is clipped (it used to fail).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(
            max_length=1000,
            preserve_tracebacks=True,
            truncation_message="...(省略了{remaining}行)",
        )
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``output`` event.
        self.output_event = self.define_event(
            "output", ["clipped_text", "was_clipped", "original_length"]
        )

    def clip(self, text: str, max_length: int | None = None) -> tuple[str, bool]:
        """
        Return ``(clipped text, was clipped)`` for ``text`` under this routine's config.
        """
        limit = max_length or self.get_config("max_length", 1000)
        if self.get_config("preserve_tracebacks", True) and "Traceback" in text:
            return text, False
        if len(text) <= limit:
            return text, False
        lines = text.split("\n")
        kept: list[str] = []
        count = 0
        for line in lines:
            if count + len(line) + 1 >= limit:
                break
            kept.append(line)
            count += len(line) + 1
        message = str(self.get_config("truncation_message", "")).format(
            remaining=len(lines) - len(kept)
        )
        return "\n".join(kept) + "\n" + message, True

    def _handle_input(self, text: Any = None, max_length: int | None = None, **kwargs: Any) -> None:
        value = text if text is not None else self._extract_input_data(**kwargs)
        resolved = _resolve_text(value)
        clipped, was_clipped = self.clip(resolved, max_length)
        self.emit(
            "output",
            clipped_text=clipped,
            was_clipped=was_clipped,
            original_length=len(resolved),
        )


class TextRenderer(Routine):
    """
    Render dicts and lists as XML-like tags or as markdown.

    Slot ``input`` takes ``data``. Event ``output`` carries ``rendered_text`` and
    ``original_type`` (the type name of the input).

    Config:
        tag_format (str): ``"xml"`` (default); any other value renders markdown.
        indent (str): Prefix per nesting level (two spaces).
        include_type_hints (bool): Add the type of each leaf value: ``<n type="int">1</n>``
            in XML, ``**n** (int): 1`` in markdown (False).

    .. versionchanged:: 0.10
       ``include_type_hints`` is implemented (it was ignored).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(tag_format="xml", indent="  ", include_type_hints=False)
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``output`` event.
        self.output_event = self.define_event("output", ["rendered_text", "original_type"])

    def render(self, value: Any) -> str:
        """
        Render ``value`` under this routine's config.
        """
        xml = self.get_config("tag_format", "xml") == "xml"
        indent = str(self.get_config("indent", "  "))
        hints = bool(self.get_config("include_type_hints", False))
        return _Renderer(xml, indent, hints).render(value, 0, frozenset())

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        value = self._extract_input_data(data, **kwargs)
        self.emit("output", rendered_text=self.render(value), original_type=type(value).__name__)


class _Renderer:
    def __init__(self, xml: bool, indent: str, hints: bool) -> None:
        self.xml = xml
        self.indent = indent
        self.hints = hints

    def render(self, value: Any, level: int, path: frozenset[int]) -> str:
        if isinstance(value, (dict, list)):
            if id(value) in path:
                return "[Circular Reference]"
            path = path | {id(value)}
            items = value.items() if isinstance(value, dict) else enumerate(value)
            prefix = self.indent * level
            return "\n".join(
                self.line(prefix, key, isinstance(value, dict), item, level, path)
                for key, item in items
            )
        return str(value)

    def line(
        self, prefix: str, key: Any, in_dict: bool, item: Any, level: int, path: frozenset[int]
    ) -> str:
        inner = self.render(item, level + 1, path)
        leaf = not isinstance(item, (dict, list))
        hint = type(item).__name__ if self.hints and leaf else ""
        if self.xml:
            tag = str(key) if in_dict else f"item_{key}"
            attr = f' type="{hint}"' if hint else ""
            return f"{prefix}<{tag}{attr}>{inner}</{tag}>"
        suffix = f" ({hint})" if hint else ""
        if in_dict:
            return f"{prefix}**{key}**{suffix}: {inner}"
        return f"{prefix}-{suffix} {inner}"
