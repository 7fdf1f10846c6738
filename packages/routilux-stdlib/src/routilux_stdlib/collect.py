"""
Stateful collectors: Aggregator (gather from several upstreams) and Batcher (groups of N).

Both keep their per-job state in the job's shared data (see :mod:`routilux_stdlib._state`),
never on the routine, so one flow serves concurrent jobs and a paused job's state is saved
with its JobState. Both need to run inside a job.
"""

from __future__ import annotations

from typing import Any

from routilux import ExecutionContext, Routine

from ._state import require_context, update_state


__all__ = ["Aggregator", "Batcher"]


def _sender(ctx: ExecutionContext) -> str | None:
    # The flow routine id of the routine whose event delivered the running activation.
    return ctx.source_routine_id


class Aggregator(Routine):
    """
    Collect inputs from several upstream routines, then emit them together.

    Slot ``input`` collects one item per activation (its ``data``). The collection is
    emitted, and a new one starts, when:

    * ``count`` is ``None`` (default) and every expected source has sent at least once;
    * ``count`` is set and that many items arrived;
    * the ``flush`` slot is called (the job asks), whatever has arrived so far (nothing
      is emitted when nothing arrived).

    Event ``output`` carries ``items`` (in arrival order), ``sources`` (the sender of
    each item), ``by_source`` (sender to its last item), ``count`` and ``reason``
    (``"all_sources"``, ``"count"`` or ``"flush"``).

    Config:
        sources (list[str] | None): The expected senders; ``None`` (default) means every
            routine connected to ``input`` in the flow.
        count (int | None): Emit after this many items instead of waiting for sources.
        source_key (str | None): Take the sender's name from this payload key instead of
            the connection (for inputs that name their origin themselves).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(sources=None, count=None, source_key=None)
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``flush`` slot.
        self.flush_slot = self.define_slot("flush", self._handle_flush)
        #: The ``output`` event.
        self.output_event = self.define_event(
            "output", ["items", "sources", "by_source", "count", "reason"]
        )

    def expected_sources(self, ctx: ExecutionContext) -> list[str]:
        """
        Return the senders this aggregator waits for in the job of ``ctx``.
        """
        configured = self.get_config("sources")
        if configured is not None:
            return [str(s) for s in configured]
        out: list[str] = []
        for conn in ctx.flow.connections:
            if (
                conn.target_routine_id == ctx.routine_id
                and conn.target_slot is not None
                and conn.target_slot.name == "input"
                and conn.source_routine_id is not None
                and conn.source_routine_id not in out
            ):
                out.append(conn.source_routine_id)
        return out

    def _emit(self, state: dict[str, Any], reason: str) -> None:
        items = list(state.get("items", []))
        senders = list(state.get("sources", []))
        by_source = {s: i for s, i in zip(senders, items, strict=True) if s is not None}
        self.emit(
            "output",
            items=items,
            sources=senders,
            by_source=by_source,
            count=len(items),
            reason=reason,
        )

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        ctx = require_context(self)
        key = self.get_config("source_key")
        if key and key in kwargs:
            sender: str | None = str(kwargs.pop(key))
        else:
            sender = _sender(ctx)
        value = self._extract_input_data(data, **kwargs)
        count = self.get_config("count")
        expected = set(self.expected_sources(ctx)) if count is None else set()

        def add(state: dict[str, Any]) -> tuple[dict[str, Any], tuple[dict[str, Any], str] | None]:
            items = [*state.get("items", []), value]
            senders = [*state.get("sources", []), sender]
            new = {"items": items, "sources": senders}
            if count is not None and len(items) >= int(count):
                return {}, (new, "count")
            if count is None and expected and expected.issubset(set(senders)):
                return {}, (new, "all_sources")
            return new, None

        done = update_state(ctx, "Aggregator", add)
        if done is not None:
            self._emit(*done)

    def _handle_flush(self, **_: Any) -> None:
        ctx = require_context(self)
        taken = update_state(ctx, "Aggregator", lambda state: ({}, state))
        if taken.get("items"):
            self._emit(taken, "flush")


class Batcher(Routine):
    """
    Group items into batches of ``batch_size``.

    Slot ``input`` adds one item per activation (its ``data``). Each full batch is
    emitted on ``batch`` with ``items``, ``index`` (0, 1, ...) and ``final`` (False).

    **Flushing the rest.** Items left over when the input ends are emitted by calling the
    ``flush`` slot: wire the event that marks the end of the input to it (for example a
    Splitter's ``done`` event). ``flush`` takes an optional ``total`` (or ``count``): the
    number of items the input had since the last flush. When fewer items have arrived
    (concurrent jobs may deliver the flush before the last items), the flush waits for
    them and happens when the last one arrives. The flushed batch has ``final=True``.

    Config:
        batch_size (int): Items per batch (10).
        emit_empty_final (bool): Emit an empty ``final`` batch when a flush finds nothing
            left (False).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(batch_size=10, emit_empty_final=False)
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``flush`` slot.
        self.flush_slot = self.define_slot("flush", self._handle_flush)
        #: The ``batch`` event.
        self.batch_event = self.define_event("batch", ["items", "index", "final"])

    def _size(self) -> int:
        size = int(self.get_config("batch_size", 10))
        return size if size > 0 else 1

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        ctx = require_context(self)
        value = self._extract_input_data(data, **kwargs)
        size = self._size()

        def add(state: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[list[Any], int, bool]]]:
            buffer = [*state.get("buffer", []), value]
            seen = int(state.get("seen", 0)) + 1
            index = int(state.get("index", 0))
            flush_at = state.get("flush_at")
            out: list[tuple[list[Any], int, bool]] = []
            if len(buffer) >= size:
                out.append((buffer[:size], index, False))
                buffer, index = buffer[size:], index + 1
            if flush_at is not None and seen >= int(flush_at):
                if buffer or self.get_config("emit_empty_final", False):
                    out.append((buffer, index, True))
                    index += 1
                return {"index": index}, out
            return {"buffer": buffer, "seen": seen, "index": index, "flush_at": flush_at}, out

        for items, index, final in update_state(ctx, "Batcher", add):
            self.emit("batch", items=items, index=index, final=final)

    def _handle_flush(self, total: int | None = None, count: int | None = None, **_: Any) -> None:
        ctx = require_context(self)
        expected = total if total is not None else count

        def flush(state: dict[str, Any]) -> tuple[dict[str, Any], tuple[list[Any], int] | None]:
            seen = int(state.get("seen", 0))
            index = int(state.get("index", 0))
            if expected is not None and seen < int(expected):
                return {**state, "flush_at": int(expected)}, None
            buffer = list(state.get("buffer", []))
            if buffer or self.get_config("emit_empty_final", False):
                return {"index": index + 1}, (buffer, index)
            return {"index": index}, None

        out = update_state(ctx, "Batcher", flush)
        if out is not None:
            self.emit("batch", items=out[0], index=out[1], final=True)
