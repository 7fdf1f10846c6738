"""
An I/O-bound routine for the fan-out / fan-in example: a slow lookup, one per item.

Load it with ``routilux run examples/fanout/flow.json --import examples/fanout/lookups.py``
(the command line names the module; a flow file never makes routilux import anything).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from routilux import Routine
from routilux.registry import register_routine


__all__ = ["SlowLookup"]


@register_routine(name="examples.SlowLookup")
class SlowLookup(Routine):
    """
    Look an item up in a (simulated) remote service that answers after ``latency`` seconds.

    Slot ``input`` takes ``data`` (the item, as a Splitter's ``item`` event carries it). The
    handler is ``async def``: while one lookup waits, the others run, so N lookups take
    about one latency, not N. Event ``output`` carries ``data``:
    ``{"item": ..., "digest": ...}``.

    Config:
        latency (float): Seconds one lookup waits (0.2).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(latency=0.2)
        self.define_slot("input", self.lookup)
        self.define_event("output", ["data"])

    async def lookup(self, data: Any = None, **_: Any) -> None:
        """
        Wait like a network call would, then emit the item with its digest.
        """
        await asyncio.sleep(float(self.get_config("latency", 0.2)))
        digest = hashlib.sha256(str(data).encode()).hexdigest()[:12]
        self.emit("output", data={"item": data, "digest": digest})
