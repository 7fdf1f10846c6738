"""
Routines of the ``routilux graph`` tests, registered for ``--import``.
"""

from __future__ import annotations

from typing import Any

from routilux import Routine
from routilux.registry import register_routine


@register_routine(name="graph.Start")
class Start(Routine):
    """Entry routine: emits ``out`` once."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, **_: Any) -> None:
        self.emit("out", value=1)


@register_routine(name="graph.Relay")
class Relay(Routine):
    """Takes what it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, **_: Any) -> None:
        pass
