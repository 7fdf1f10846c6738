"""
ResultExtractor: pull structured results out of LLM and interpreter output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeAlias

from routilux import Routine

from ._log import logger
from .exceptions import ExtractionError


__all__ = ["Extractor", "ResultExtractor"]

Found: TypeAlias = "tuple[Any, str, dict[str, Any]] | None"
"""What an extractor returns: ``(result, format, metadata)``, or ``None`` when it does not apply."""

Extractor: TypeAlias = Callable[[Any, dict[str, Any]], Found]
"""``f(data, config) -> (result, format, metadata)`` or ``None`` when it does not apply."""

_JSON_BLOCK = re.compile(r"```(?:json|\{json\})[ \t]*\n?(.*?)```", re.IGNORECASE | re.DOTALL)


def _yaml() -> Any:
    try:
        import yaml  # type: ignore[import-untyped]  # optional: only when PyYAML is installed
    except ImportError:
        return None
    return yaml


def _block(lang: str) -> re.Pattern[str]:
    return re.compile(
        rf"```(?:{re.escape(lang)}|\{{{re.escape(lang)}\}})[ \t]*\n?(.*?)```",
        re.IGNORECASE | re.DOTALL,
    )


def _interpreter_output(data: Any, config: dict[str, Any]) -> Found:
    if not config.get("format_interpreter_output", True) or not isinstance(data, list):
        return None
    if not any(isinstance(i, dict) and ("format" in i or "content" in i) for i in data):
        return None
    lines: list[str] = []
    outputs = 0
    for item in data:
        if isinstance(item, dict) and item.get("format") == "output":
            content = item.get("content")
            if isinstance(content, str) and content.strip():
                lines.append(content)
                outputs += 1
        elif isinstance(item, str) and item.strip():
            lines.append(item)
    if not lines:
        return None
    text = "\n".join(lines)
    meta = {
        "extraction_method": "interpreter_output",
        "output_count": outputs,
        "line_count": len(text.split("\n")),
    }
    return text, "interpreter_output", meta


def _json_code_block(data: Any, config: dict[str, Any]) -> Found:
    if not config.get("extract_json_blocks", True) or not isinstance(data, str):
        return None
    blocks = _JSON_BLOCK.findall(data)
    for index in range(len(blocks) - 1, -1, -1):
        try:
            result = json.loads(blocks[index].strip())
        except ValueError:
            continue
        meta = {
            "extraction_method": "json_code_block",
            "block_count": len(blocks),
            "block_index": index,
        }
        return result, "json", meta
    return None


def _json_string(data: Any, config: dict[str, Any]) -> Found:
    if not config.get("parse_json_strings", True) or not isinstance(data, str):
        return None
    text = data.strip()
    if len(text) <= 2 or text[0] not in "{[":
        return None
    try:
        return json.loads(text), "json", {"extraction_method": "json_string"}
    except ValueError:
        return None


def _yaml_code_block(data: Any, config: dict[str, Any]) -> Found:
    yaml = _yaml()
    if yaml is None or not config.get("extract_yaml_blocks") or not isinstance(data, str):
        return None
    blocks = _block("yaml").findall(data) + _block("yml").findall(data)
    for block in reversed(blocks):
        try:
            result = yaml.safe_load(block)
        except yaml.YAMLError:
            continue
        if result is not None:
            return result, "yaml", {"extraction_method": "yaml_code_block"}
    return None


def _yaml_string(data: Any, config: dict[str, Any]) -> Found:
    yaml = _yaml()
    if yaml is None or not config.get("parse_yaml_strings") or not isinstance(data, str):
        return None
    try:
        result = yaml.safe_load(data)
    except yaml.YAMLError:
        return None
    if isinstance(result, (dict, list)):
        return result, "yaml", {"extraction_method": "yaml_string"}
    return None


def _xml_code_block(data: Any, config: dict[str, Any]) -> Found:
    if not config.get("extract_xml_blocks") or not isinstance(data, str):
        return None
    blocks = _block("xml").findall(data)
    if not blocks:
        return None
    return blocks[-1].strip(), "xml", {"extraction_method": "xml_code_block"}


def _code_block(data: Any, config: dict[str, Any]) -> Found:
    if not config.get("extract_code_blocks", True) or not isinstance(data, str):
        return None
    for lang in config.get("code_block_languages", []):
        if lang == "json":
            continue
        blocks = _block(str(lang)).findall(data)
        if blocks:
            return blocks[-1].strip(), str(lang), {"extraction_method": f"{lang}_code_block"}
    return None


def _parse_nested(value: Any, depth: int = 0) -> Any:
    # detect_nested_structures: JSON object/array strings inside a dict or list are parsed.
    if depth > 20:
        return value
    if isinstance(value, dict):
        return {k: _parse_nested(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_parse_nested(v, depth + 1) for v in value]
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 2 and text[0] in "{[":
            try:
                return _parse_nested(json.loads(text), depth + 1)
            except ValueError:
                return value
    return value


def _dict_extractor(data: Any, config: dict[str, Any]) -> Found:
    if not isinstance(data, dict):
        return None
    result = _parse_nested(data) if config.get("detect_nested_structures", True) else data
    return result, "dict", {"extraction_method": "direct", "key_count": len(data)}


def _list_extractor(data: Any, config: dict[str, Any]) -> Found:
    if not isinstance(data, list):
        return None
    result = _parse_nested(data) if config.get("detect_nested_structures", True) else data
    return result, "list", {"extraction_method": "direct", "item_count": len(data)}


_SPECIFIC: tuple[tuple[str, Extractor], ...] = (
    ("interpreter_output", _interpreter_output),
    ("json_code_block", _json_code_block),
    ("json_string", _json_string),
    ("yaml_code_block", _yaml_code_block),
    ("yaml_string", _yaml_string),
    ("xml_code_block", _xml_code_block),
    ("code_block", _code_block),
)
_GENERIC: tuple[tuple[str, Extractor], ...] = (
    ("dict_extractor", _dict_extractor),
    ("list_extractor", _list_extractor),
)


def _confidence(result: Any, fmt: str, meta: dict[str, Any]) -> float:
    score = 0.5
    if isinstance(result, (dict, list)):
        score += 0.2
    if "code_block" in str(meta.get("extraction_method", "")):
        score += 0.1
    if fmt in ("json", "yaml"):
        score += 0.1
    if not result or (isinstance(result, str) and not result.strip()):
        score -= 0.3
    return round(min(1.0, max(0.0, score)), 6)


class ResultExtractor(Routine):
    """
    Extract a structured result (JSON, code blocks, interpreter output...) from its input.

    Slot ``input`` takes ``data``; an empty dict (also what a call without data gives) is
    taken as ``""``, so it matches nothing. Event ``output`` carries ``extracted_result``,
    ``format``, ``metadata``, ``confidence`` and ``extraction_path``.

    Extractors are tried in this order: ``interpreter_output``, ``json_code_block``,
    ``json_string``, ``yaml_code_block``, ``yaml_string``, ``xml_code_block``,
    ``code_block``, then the custom ones (:meth:`register_extractor`, in registration
    order), and last the generic ``dict_extractor`` and ``list_extractor``. Names listed in
    ``extractor_priority`` go first, in that order.

    Config:
        strategy (str): ``"auto"``, ``"first_match"`` or ``"priority"`` (first success) or
            ``"all"`` (every success, ``format="multi"``).
        extractor_priority (list[str]): Extractor names tried first ([]).
        extract_json_blocks, extract_code_blocks (bool): Look for fenced blocks (True).
        extract_yaml_blocks, parse_yaml_strings (bool): YAML, when PyYAML is installed (False).
        extract_xml_blocks (bool): The last ```xml block as a string (False).
        code_block_languages (list[str]): Languages ``code_block`` looks for.
        format_interpreter_output (bool): Join interpreter ``output`` items (True).
        parse_json_strings (bool): Parse strings that are JSON objects or arrays (True).
        detect_nested_structures (bool): Parse JSON strings nested in dict/list input (True).
        continue_on_error (bool): Try the next extractor after one raises (True).
        return_original_on_failure (bool): Emit the input as is when nothing matches (True);
            otherwise the handler raises :class:`~routilux_stdlib.exceptions.ExtractionError`.
        log_errors (bool): Log extractor errors on the ``routilux_stdlib`` logger (True).

    .. versionchanged:: 0.10
       Custom extractors run before the generic dict and list ones;
       ``detect_nested_structures`` is implemented.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(
            strategy="auto",
            extractor_priority=[],
            extract_json_blocks=True,
            extract_code_blocks=True,
            extract_yaml_blocks=False,
            extract_xml_blocks=False,
            code_block_languages=["json", "python", "output", "yaml", "xml"],
            format_interpreter_output=True,
            parse_json_strings=True,
            parse_yaml_strings=False,
            detect_nested_structures=True,
            continue_on_error=True,
            return_original_on_failure=True,
            log_errors=True,
        )
        self._custom: dict[str, Extractor] = {}
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``output`` event.
        self.output_event = self.define_event(
            "output", ["extracted_result", "format", "metadata", "confidence", "extraction_path"]
        )

    def register_extractor(self, name: str, func: Extractor) -> None:
        """
        Add a custom extractor, tried after the specific built-ins and before the generic
        dict and list extractors (it is not serialized; register it again after loading).
        """
        self._custom[name] = func

    def extractors(self) -> list[tuple[str, Extractor]]:
        """
        Return the extractors in the order they are tried.
        """
        ordered = [*_SPECIFIC, *self._custom.items(), *_GENERIC]
        priority = list(self.get_config("extractor_priority") or [])
        if priority:
            rank = {name: i for i, name in enumerate(priority)}
            ordered.sort(key=lambda pair: rank.get(pair[0], len(rank)))
        return ordered

    @property
    def _extractors(self) -> Mapping[str, Extractor]:
        """
        The extractors by name, in the order they are tried, read-only (the 0.9
        attribute, kept for compatibility).
        """
        return MappingProxyType(dict(self.extractors()))

    def extract(self, data: Any) -> dict[str, Any]:
        """
        Return the payload the ``output`` event would carry for ``data``.

        Raises:
            ExtractionError: Nothing matched and ``return_original_on_failure`` is off.
        """
        config = self.config()
        strategy = config.get("strategy", "auto")
        successes: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        for name, func in self.extractors():
            try:
                found = func(data, config)
            except Exception as exc:  # noqa: BLE001 - an extractor's failure is data here
                errors.append({"extractor": name, "error": str(exc)})
                if config.get("log_errors", True):
                    logger.warning("extractor %s failed: %r", name, exc)
                if not config.get("continue_on_error", True):
                    break
                continue
            if found is None:
                continue
            result, fmt, meta = found
            meta = {**meta, "extractor": name, "strategy": strategy}
            successes.append(
                {
                    "extracted_result": result,
                    "format": fmt,
                    "metadata": meta,
                    "confidence": _confidence(result, fmt, meta),
                    "extraction_path": [name],
                }
            )
            if strategy != "all":
                break
        if successes and strategy != "all":
            return successes[0]
        if successes:
            return {
                "extracted_result": [s["extracted_result"] for s in successes],
                "format": "multi",
                "metadata": {"extractions": successes, "count": len(successes), "errors": errors},
                "confidence": max(s["confidence"] for s in successes),
                "extraction_path": [s["extraction_path"][0] for s in successes],
            }
        if not config.get("return_original_on_failure", True):
            msg = f"no extractor matched {type(data).__name__} input"
            raise ExtractionError(msg, errors=errors)
        return {
            "extracted_result": data,
            "format": type(data).__name__.lower(),
            "metadata": {
                "extraction_method": "none",
                "errors": errors,
                "original_type": type(data).__name__,
            },
            "confidence": 0.0,
            "extraction_path": [],
        }

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        value = self._extract_input_data(data, **kwargs)
        if isinstance(value, dict) and not value:
            value = ""  # an empty input (what no data at all gives) is extracted as ""
        self.emit("output", **self.extract(value))
