"""
Connection: a link from an event to a slot, with optional parameter renaming.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from routilux._util._checks import require_mapping


if TYPE_CHECKING:
    from routilux.model._event import Event
    from routilux.model._slot import Slot

__all__ = ["Connection"]


@attrs.define(eq=False, repr=False, init=False)
class Connection:
    """
    A link from ``source_event`` to ``target_slot``. Creating one with both ends links
    them at once. ``param_mapping`` renames payload keys on the way (``{"src": "dst"}``).
    """

    #: The event data comes from.
    source_event: Event | None
    #: The slot data goes to.
    target_slot: Slot | None
    #: Payload keys to rename, ``{source key: target key}``.
    param_mapping: dict[str, str]
    #: Flow routine id of the source, set by ``Flow.connect``.
    source_routine_id: str | None
    #: Flow routine id of the target, set by ``Flow.connect``.
    target_routine_id: str | None

    def __init__(
        self,
        source_event: Event | None = None,
        target_slot: Slot | None = None,
        param_mapping: dict[str, str] | None = None,
    ) -> None:
        require_mapping(param_mapping, "param_mapping", "source key to target key")
        self.__attrs_init__(source_event, target_slot, dict(param_mapping or {}), None, None)
        if source_event is not None and target_slot is not None:
            source_event.connect(target_slot)

    def __repr__(self) -> str:
        return f"Connection[{self.source_event!r} -> {self.target_slot!r}]"

    def apply_mapping(self, data: dict[str, Any]) -> dict[str, Any]:
        """
        Return ``data`` with its keys renamed by :attr:`param_mapping` (``data`` itself when
        there is no mapping): each mapped source key present becomes its target key, and
        every other key passes through unless a mapped key took its name.
        """
        mapping = self.param_mapping
        if not mapping:
            return data
        out = {dst: data[src] for src, dst in mapping.items() if src in data}
        targets = set(mapping.values())
        for key, value in data.items():
            if key not in targets and key not in out:
                out[key] = value
        return out

    #: The original's name of :meth:`apply_mapping` (SPEC 6.2), kept for code written against it.
    _apply_mapping = apply_mapping

    def activate(self, data: dict[str, Any]) -> None:
        """
        Deliver ``data`` to the target slot synchronously, after parameter mapping.
        """
        if self.target_slot is not None:
            self.target_slot.receive(self.apply_mapping(data))

    def disconnect(self) -> None:
        """
        Unlink the two ends (safe to repeat).
        """
        if self.source_event is not None and self.target_slot is not None:
            self.source_event.disconnect(self.target_slot)

    def serialize(self) -> dict[str, Any]:
        """
        Return the connection as data: routine ids, event and slot names, mapping.
        """
        from routilux.codec._connections import dump_connection

        return dump_connection(self)

    def deserialize(self, data: dict[str, Any]) -> None:
        """
        Read the ids and names of :meth:`serialize` output; the ends are bound by
        ``Flow.deserialize``. ``data`` is not changed.
        """
        from routilux.codec._connections import load_connection_into

        load_connection_into(self, data)
