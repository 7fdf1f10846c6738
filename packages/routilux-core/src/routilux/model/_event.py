"""
Event: a named output of a routine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs


if TYPE_CHECKING:
    from routilux.model._definition import FlowDefinition as Flow
    from routilux.model._routine import Routine
    from routilux.model._slot import Slot

__all__ = ["Event"]


def _as_list(value: Any) -> list[str]:
    return list(value or [])


@attrs.define(eq=False, repr=False)
class Event:
    """
    A named output of a routine. Emitting it delivers the payload to every connected slot.
    """

    #: The event's name, unique within its routine.
    name: str = ""
    #: The routine that owns the event, or ``None``.
    routine: Routine | None = None
    #: The payload keys the event documents (not enforced).
    output_params: list[str] = attrs.field(factory=list, converter=_as_list)
    #: Slots linked to this event, in connection order.
    connected_slots: list[Slot] = attrs.field(factory=list)

    def __repr__(self) -> str:
        if self.routine is not None:
            return f"Event[{self.routine._id}.{self.name}]"
        return f"Event[{self.name}]"

    def connect(self, slot: Slot, param_mapping: dict[str, str] | None = None) -> None:
        """
        Link this event and ``slot`` both ways (idempotent). ``param_mapping`` is ignored.
        """
        slot.connect(self)

    def disconnect(self, slot: Slot) -> None:
        """
        Remove the link with ``slot`` both ways; a no-op when not linked.
        """
        slot.disconnect(self)

    def serialize(self) -> dict[str, Any]:
        """
        Return the event as data: name and ``output_params`` (connections belong to the flow).
        """
        from routilux.codec._routines import dump_event

        return dump_event(self)

    def deserialize(self, data: dict[str, Any]) -> None:
        """
        Restore name and ``output_params`` from :meth:`serialize` output.
        """
        from routilux.codec._routines import load_event_into

        load_event_into(self, data)

    def emit(self, flow: Flow | None = None, **kwargs: Any) -> None:
        """
        Deliver ``kwargs`` to the connected slots.

        Inside a job, one activation per connected slot is queued on that job and this
        returns at once. Outside any job, each slot receives the data synchronously, in
        connection order, without parameter mapping.
        """
        from routilux.model._context import current_frame

        frame = current_frame()
        if frame is not None and (flow is None or flow is frame.run.flow):
            frame.run.emit_event(self, kwargs, frame)
            return
        for slot in list(self.connected_slots):
            slot.receive(dict(kwargs))
