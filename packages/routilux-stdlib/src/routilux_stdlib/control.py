"""
Stateless flow control: Filter (keep matching items) and Splitter (one event per item).
"""

from __future__ import annotations

from typing import Any

from routilux import Routine
from routilux.exceptions import DeserializationError

from .exceptions import ExpressionError
from .predicates import check_condition, condition_matches, condition_to_data
from .router import job_stats


__all__ = ["Filter", "Splitter"]


class Filter(Routine):
    """
    Keep the items that match a condition.

    Slot ``input`` takes ``data``. A list is filtered item by item: ``output`` carries the
    kept items as ``data`` (always emitted, possibly empty) and ``rejected`` the others (only
    when there are some). Any other value is one item: it goes to ``output`` or ``rejected``.

    Config:
        condition: A condition as for ConditionalRouter (a registered predicate name, an
            expression over ``data`` (the item), ``config`` and ``stats``, a field-match
            dict, or a callable); ``None`` (default) keeps truthy items.
        split_lists (bool): Filter the items of a list input (True); False treats a list as
            one item.

    A condition that raises while it runs rejects the item.
    """

    #: The condition reads any key of the config: a flow file may set keys beyond those above.
    open_config = True

    def __init__(self) -> None:
        super().__init__()
        self.set_config(condition=None, split_lists=True)
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``output`` event.
        self.output_event = self.define_event("output", ["data"])
        #: The ``rejected`` event.
        self.rejected_event = self.define_event("rejected", ["data"])

    def set_config(self, **kwargs: Any) -> None:
        """
        Update the config, checking a new ``condition``.

        Raises:
            ExpressionError: The condition is an expression the evaluator refuses.
        """
        if kwargs.get("condition") is not None:
            check_condition(kwargs["condition"])
        super().set_config(**kwargs)

    def serialize_config(self) -> dict[str, Any]:
        """
        Return the config as data; a callable condition becomes its predicate name.

        Raises:
            SerializationError: The condition is a callable without a registered name.
        """
        config = dict(self._config)
        if config.get("condition") is not None:
            config["condition"] = condition_to_data(
                config["condition"], "config.condition", f"condition of {self!r}"
            )
        return config

    def deserialize_config(self, config: dict[str, Any]) -> None:
        """
        Restore the config written by :meth:`serialize_config` (Flow loading calls this).

        Raises:
            DeserializationError: The condition is an expression the evaluator refuses.
        """
        try:
            self.set_config(**config)
        except ExpressionError as exc:
            raise DeserializationError(str(exc), path="config.condition") from None

    def keeps(self, item: Any, stats: dict[str, Any] | None = None) -> bool:
        """
        Tell whether ``item`` passes the filter.
        """
        config = self.config()
        condition = config.get("condition")
        if condition is None:
            return bool(item)
        return condition_matches(condition, item, config, stats or {})

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        value = self._extract_input_data(data, **kwargs)
        stats = job_stats(self)
        if isinstance(value, (list, tuple)) and self.get_config("split_lists", True):
            kept: list[Any] = []
            dropped: list[Any] = []
            for item in value:
                (kept if self.keeps(item, stats) else dropped).append(item)
            self.emit("output", data=kept)
            if dropped:
                self.emit("rejected", data=dropped)
            return
        self.emit("output" if self.keeps(value, stats) else "rejected", data=value)


class Splitter(Routine):
    """
    Split a list into one event per item.

    Slot ``input`` takes ``data``. For each item, event ``item`` carries ``data``,
    ``index`` and ``total``; then ``done`` carries ``count`` and ``total`` (wire it to a
    Batcher's ``flush`` slot to flush the last batch). A value that is not a list or
    tuple is one item.

    Config:
        field (str | None): When set and the input is a dict, split ``data[field]``
            instead (a missing field splits nothing).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(field=None)
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``item`` event.
        self.item_event = self.define_event("item", ["data", "index", "total"])
        #: The ``done`` event.
        self.done_event = self.define_event("done", ["count", "total"])

    def items(self, value: Any) -> list[Any]:
        """
        Return the items ``value`` splits into.
        """
        field = self.get_config("field")
        if field is not None and isinstance(value, dict):
            value = value.get(field, [])
        if isinstance(value, (list, tuple)):
            return list(value)
        return [value]

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        items = self.items(self._extract_input_data(data, **kwargs))
        total = len(items)
        for index, item in enumerate(items):
            self.emit("item", data=item, index=index, total=total)
        self.emit("done", count=total, total=total)
