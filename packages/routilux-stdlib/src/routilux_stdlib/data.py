"""
Data routines: DataFlattener, DataTransformer and DataValidator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from routilux import Routine


__all__ = [
    "BUILTIN_TRANSFORMATIONS",
    "BUILTIN_VALIDATORS",
    "DataFlattener",
    "DataTransformer",
    "DataValidator",
]


class DataFlattener(Routine):
    """
    Flatten nested dicts and lists into one dict of dotted keys.

    Slot ``input`` takes ``data``. Event ``output`` carries ``flattened_data``,
    ``original_type`` (``"dict"``, ``"list"`` or the type name of a scalar) and ``depth``
    (the depth of the deepest leaf; the root is 0).

    Config:
        separator (str): Joins key parts (``"."``).
        preserve_lists (bool): List indices become key parts (True); otherwise every item
            is flattened under the list's own key and the last one wins.
        max_depth (int): Deeper subtrees are stringified under their key (100).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(separator=".", preserve_lists=True, max_depth=100)
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``output`` event.
        self.output_event = self.define_event(
            "output", ["flattened_data", "original_type", "depth"]
        )

    def flatten(self, value: Any) -> tuple[dict[str, Any], int]:
        """
        Return ``(flattened dict, depth)`` for ``value`` under this routine's config.
        """
        if not isinstance(value, (dict, list)) and not hasattr(value, "serialize"):
            return {"value": value}, 0
        out: dict[str, Any] = {}
        deepest = [0]
        self._walk(value, "", 0, frozenset(), out, deepest)
        return out, deepest[0]

    def _walk(
        self,
        value: Any,
        prefix: str,
        depth: int,
        path: frozenset[int],
        out: dict[str, Any],
        deepest: list[int],
    ) -> None:
        sep = str(self.get_config("separator", "."))
        if not isinstance(value, (dict, list)) and callable(getattr(value, "serialize", None)):
            value = value.serialize()
        if isinstance(value, (dict, list)):
            if id(value) in path:
                out[prefix] = "[Circular Reference]"
                deepest[0] = max(deepest[0], depth)
                return
            if depth >= int(self.get_config("max_depth", 100)):
                out[prefix] = str(value)
                deepest[0] = max(deepest[0], depth)
                return
            path = path | {id(value)}
            if isinstance(value, dict):
                for key, item in value.items():
                    child = f"{prefix}{sep}{key}" if prefix else str(key)
                    self._walk(item, child, depth + 1, path, out, deepest)
            elif self.get_config("preserve_lists", True):
                for index, item in enumerate(value):
                    child = f"{prefix}{sep}{index}" if prefix else str(index)
                    self._walk(item, child, depth + 1, path, out, deepest)
            else:
                for item in value:
                    self._walk(item, prefix, depth + 1, path, out, deepest)
            return
        out[prefix] = value
        deepest[0] = max(deepest[0], depth)

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        value = self._extract_input_data(data, **kwargs)
        flat, depth = self.flatten(value)
        kind = (
            "dict"
            if isinstance(value, dict)
            else "list"
            if isinstance(value, list)
            else (type(value).__name__)
        )
        self.emit("output", flattened_data=flat, original_type=kind, depth=depth)


def _lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _uppercase(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _to_int(value: Any) -> Any:
    return int(value) if isinstance(value, (int, float, str)) else value


def _to_float(value: Any) -> Any:
    return float(value) if isinstance(value, (int, float, str)) else value


def _remove_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None}
    return value


BUILTIN_TRANSFORMATIONS: Final[Mapping[str, Callable[[Any], Any]]] = {
    "lowercase": _lowercase,
    "uppercase": _uppercase,
    "strip_whitespace": _strip,
    "strip": _strip,
    "to_string": str,
    "to_int": _to_int,
    "to_float": _to_float,
    "remove_none": _remove_none,
}
"""The transformations every DataTransformer knows by name (``strip`` = ``strip_whitespace``)."""


class DataTransformer(Routine):
    """
    Apply named or callable transformations to the input.

    Slot ``input`` takes ``data`` and optional ``transformations`` (a non-empty list
    overrides the config). Event ``output`` carries ``transformed_data``,
    ``transformation_applied`` (names; a callable gives its ``__name__``) and ``errors``
    (strings, or ``None``).

    Built-in names: ``lowercase``, ``uppercase``, ``strip_whitespace`` (alias ``strip``),
    ``to_string``, ``to_int``, ``to_float``, ``remove_none``.

    Config:
        transformations (list): Names or callables, applied in order ([]).
        transformation_map (dict): Extra named transformations, by
            :meth:`register_transformation` ({}); they take precedence over built-ins.
        chain_transformations (bool): True (default) feeds each transformation the result
            of the previous one; False applies each to the original input and emits a dict
            ``{name: result}``.

    .. versionchanged:: 0.10
       ``strip`` is accepted as an alias of ``strip_whitespace``; ``chain_transformations``
       is implemented; built-ins are no longer copied into ``transformation_map`` (so the
       config serializes by name).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(transformations=[], transformation_map={}, chain_transformations=True)
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``output`` event.
        self.output_event = self.define_event(
            "output", ["transformed_data", "transformation_applied", "errors"]
        )

    def register_transformation(self, name: str, func: Callable[[Any], Any]) -> None:
        """
        Make ``func`` available under ``name`` (stored in the config's ``transformation_map``).
        """
        self.set_config(
            transformation_map={**(self.get_config("transformation_map") or {}), name: func}
        )

    def _lookup(self, name: str) -> Callable[[Any], Any] | None:
        custom = self.get_config("transformation_map") or {}
        return custom.get(name) or BUILTIN_TRANSFORMATIONS.get(name)

    def transform(self, data: Any, transformations: list[Any]) -> tuple[Any, list[str], list[str]]:
        """
        Return ``(result, applied names, errors)``.
        """
        chain = bool(self.get_config("chain_transformations", True))
        current = data
        separate: dict[str, Any] = {}
        applied: list[str] = []
        errors: list[str] = []
        for t in transformations:
            if isinstance(t, str):
                func, label = self._lookup(t), t
                if func is None:
                    errors.append(f"Unknown transformation: {t}")
                    continue
            elif callable(t):
                func, label = t, getattr(t, "__name__", repr(t))
            else:
                errors.append(f"Invalid transformation: {t}")
                continue
            try:
                result = func(current if chain else data)
            except Exception as exc:  # noqa: BLE001 - reported in the output's errors
                errors.append(f"Error applying {label}: {exc}")
                continue
            applied.append(label)
            if chain:
                current = result
            else:
                separate[label] = result
        return (current if chain else separate), applied, errors

    def _handle_input(
        self, data: Any = None, transformations: list[Any] | None = None, **kwargs: Any
    ) -> None:
        value = self._extract_input_data(data, **kwargs)
        chosen = transformations or list(self.get_config("transformations") or [])
        result, applied, errors = self.transform(value, chosen)
        self.emit(
            "output", transformed_data=result, transformation_applied=applied, errors=errors or None
        )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float))


BUILTIN_VALIDATORS: Final[Mapping[str, Callable[[Any], bool]]] = {
    "not_empty": lambda v: v is not None and v != "",
    "is_string": lambda v: isinstance(v, str),
    "is_int": lambda v: isinstance(v, int),
    "is_float": lambda v: isinstance(v, float),
    "is_number": _is_number,
    "is_dict": lambda v: isinstance(v, dict),
    "is_list": lambda v: isinstance(v, list),
    "is_positive": lambda v: _is_number(v) and v > 0,
    "is_non_negative": lambda v: _is_number(v) and v >= 0,
}
"""The validators every DataValidator knows by name."""


class DataValidator(Routine):
    """
    Validate the input against per-field rules.

    Slot ``input`` takes ``data`` and optional ``rules`` (non-empty rules override the
    config). Events: ``valid`` with ``validated_data``, ``invalid`` with ``errors`` and
    ``data``.

    A dict is checked field by field (required fields first); a list or tuple with the
    ``"items"`` rule per element; anything else with the ``"value"`` rule. A rule is a
    validator name (built-in or :meth:`register_validator`) or a callable returning a
    bool or ``(bool, message)``.

    Config:
        rules (dict): Field name to validator ({}).
        strict_mode (bool): Each check (the required fields, then the field rules) stops
            at its first error (False).
        required_fields (list[str]): Fields that must be present ([]).
        allow_extra_fields (bool): Accept dict fields without a rule (True).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(rules={}, strict_mode=False, required_fields=[], allow_extra_fields=True)
        self._validators: dict[str, Callable[[Any], Any]] = {}
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``valid`` event.
        self.valid_event = self.define_event("valid", ["validated_data"])
        #: The ``invalid`` event.
        self.invalid_event = self.define_event("invalid", ["errors", "data"])

    def register_validator(self, name: str, func: Callable[[Any], Any]) -> None:
        """
        Make ``func`` available as a rule under ``name`` (in-process; not serialized).
        """
        self._validators[name] = func

    @property
    def _builtin_validators(self) -> Mapping[str, Callable[[Any], Any]]:
        """
        The validators rule names resolve to, read-only: the built-ins and those of
        :meth:`register_validator`, which take precedence (the 0.9 attribute, kept for
        compatibility).
        """
        return MappingProxyType({**BUILTIN_VALIDATORS, **self._validators})

    def _check(self, field: str, rule: Any, value: Any) -> str | None:
        if isinstance(rule, str):
            func = self._builtin_validators.get(rule)
            if func is None:
                return f"Unknown validator: {rule}"
        elif callable(rule):
            func = rule
        else:
            return f"Invalid validator for field '{field}'"
        try:
            outcome = func(value)
        except Exception as exc:  # noqa: BLE001 - reported as a validation error
            return f"Validation error for field '{field}': {exc}"
        if isinstance(outcome, tuple) and len(outcome) == 2:
            ok, message = outcome
            return None if ok else str(message)
        return None if bool(outcome) else f"Field '{field}' failed validation"

    def validate(self, data: Any, rules: Mapping[str, Any] | None = None) -> list[str]:
        """
        Return the errors of ``data`` (empty when valid).
        """
        rules = dict(rules or self.get_config("rules") or {})
        strict = bool(self.get_config("strict_mode", False))
        errors: list[str] = []
        if isinstance(data, dict):
            for field in self.get_config("required_fields") or []:
                if field not in data:
                    errors.append(f"Required field '{field}' is missing")
                    if strict:
                        break
            for field, value in data.items():
                if field in rules:
                    error = self._check(field, rules[field], value)
                elif not self.get_config("allow_extra_fields", True):
                    error = f"Unexpected field '{field}'"
                else:
                    continue
                if error is not None:
                    errors.append(error)
                    if strict:
                        break
        elif isinstance(data, (list, tuple)):
            if "items" in rules:
                for i, item in enumerate(data):
                    error = self._check(f"items[{i}]", rules["items"], item)
                    if error is not None:
                        errors.append(error)
                        if strict:
                            break
        elif "value" in rules:
            error = self._check("value", rules["value"], data)
            if error is not None:
                errors.append(error)
        return errors

    def _handle_input(
        self, data: Any = None, rules: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        value = self._extract_input_data(data, **kwargs)
        errors = self.validate(value, rules)
        if errors:
            self.emit("invalid", errors=errors, data=value)
        else:
            self.emit("valid", validated_data=value)
