"""
Slot: a named input of a routine, with its handler and merge strategy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union

import attrs

from routilux.exceptions import ConfigurationError, ConfigurationTypeError
from routilux.model._dispatch import HandlerCall, is_coroutine_callable, make_caller


if TYPE_CHECKING:
    from routilux.model._event import Event
    from routilux.model._routine import Routine

__all__ = ["TIMEOUT_KEY", "MergeStrategy", "Slot", "check_timeout", "merge", "timeout_of"]

TIMEOUT_KEY = "slot_timeout"
"""The routine config key of the default timeout of its slots (seconds)."""

MergeStrategy = Union[str, Callable[[dict[str, Any], dict[str, Any]], Any]]
"""``"override"``, ``"append"``, or ``f(accumulated, new) -> merged``."""


def merge(strategy: MergeStrategy, buffer: dict[str, Any], new: dict[str, Any]) -> tuple[Any, Any]:
    """
    Merge ``new`` into ``buffer`` by ``strategy``; return ``(new buffer, data for the handler)``.

    ``override`` hands over a copy of ``new``; ``append`` collects each key's values in a
    list and hands over copies of the lists for the keys in ``new``; a callable gets
    ``(buffer, new)`` and its result is both the new buffer and the handler's data.
    Any other string behaves as ``override``.
    """
    if strategy == "append":
        out: dict[str, Any] = {}
        for key, value in new.items():
            acc = buffer.get(key)
            if acc is None and key not in buffer:
                acc = []
            elif not isinstance(acc, list):
                acc = [acc]
            acc.append(value)
            buffer[key] = acc
            out[key] = list(acc)
        return buffer, out
    if callable(strategy):
        result = strategy(buffer, new)
        return (dict(result) if isinstance(result, dict) else result), result
    copy = dict(new)
    return copy, dict(copy)


def check_timeout(timeout: Any, what: str, name: str = "timeout") -> float | None:
    """
    Return ``timeout`` (seconds, or ``None`` for none) as a float, checked.

    Raises:
        ConfigurationError: It is not a number of seconds > 0 (``what`` names it in the
            message, ``name`` is the setting's name).
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        msg = f"{what} must be a number of seconds > 0 or None, got {timeout!r}"
        raise ConfigurationError(msg, name=name, value=timeout)
    return float(timeout)


def timeout_of(slot: Slot) -> float | None:
    """
    Return the timeout of ``slot``'s handler: its own, else its routine's ``slot_timeout``
    config, else ``None``.

    Raises:
        ConfigurationError: The routine's ``slot_timeout`` is not a number of seconds > 0.
    """
    timeout = slot.timeout
    if timeout is None and slot.routine is not None:
        value = slot.routine.get_config(TIMEOUT_KEY)
        if value is not None:
            what = f"the {TIMEOUT_KEY!r} config of {slot.routine!r}"
            timeout = check_timeout(value, what, TIMEOUT_KEY)
    return timeout


def _set_timeout(slot: Slot, _attr: Any, value: Any) -> float | None:
    return check_timeout(value, f"the timeout of {slot!r}")


@attrs.define(eq=False, repr=False)
class Slot:
    """
    A named input of a routine. Data delivered to it is merged by ``merge_strategy`` and
    passed to ``handler`` according to the handler's signature.

    Inside a job, merge buffers are kept per job; a slot used on its own keeps its own
    buffer in ``_data``.
    """

    #: The slot's name, unique within its routine.
    name: str = ""
    #: The routine that owns the slot, or ``None`` for a bare slot.
    routine: Routine | None = None
    #: The function called with delivered data.
    handler: Callable[..., Any] | None = attrs.field(
        default=None, on_setattr=lambda self, _a, v: self._classify(v)
    )
    #: ``"override"`` (default), ``"append"`` or a callable.
    merge_strategy: MergeStrategy = "override"
    #: Events linked to this slot.
    connected_events: list[Event] = attrs.field(factory=list)
    #: Seconds its handler may run (``None``: the routine's ``slot_timeout`` config, else
    #: no limit); see :class:`~routilux.exceptions.ActivationTimeout`.
    timeout: float | None = attrs.field(default=None, kw_only=True, on_setattr=_set_timeout)
    _data: dict[str, Any] = attrs.field(factory=dict)
    _call: HandlerCall | None = attrs.field(default=None, init=False)
    _is_async: bool = attrs.field(default=False, init=False)
    # Guards ``_data`` when the slot is used on its own from several threads (jobs keep
    # their own buffers under the job's lock).
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    def __attrs_post_init__(self) -> None:
        self._classify(self.handler)
        self.timeout = check_timeout(self.timeout, f"the timeout of {self!r}")

    def _classify(self, handler: Callable[..., Any] | None) -> Callable[..., Any] | None:
        given: object = handler  # checked at run time, whatever the annotation says
        if given is not None and not callable(given):
            msg = (
                f"the handler of slot {self.name!r} must be callable or None, got "
                f"{type(handler).__name__} {handler!r}"
            )
            raise ConfigurationTypeError(msg, name="handler", value=handler)
        self._call = None if handler is None else make_caller(handler)
        self._is_async = handler is not None and is_coroutine_callable(handler)
        return handler

    @property
    def is_async(self) -> bool:
        """
        ``True`` when the handler is a coroutine function (it runs on an event loop).
        """
        return self._is_async

    @property
    def caller(self) -> HandlerCall | None:
        """
        The handler as the engine calls it, with the merged data (its signature analysed
        once, when the handler was set); ``None`` without a handler.
        """
        return self._call

    def __repr__(self) -> str:
        if self.routine is not None:
            return f"Slot[{self.routine._id}.{self.name}]"
        return f"Slot[{self.name}]"

    def connect(self, event: Event, param_mapping: dict[str, str] | None = None) -> None:
        """
        Link this slot and ``event`` both ways (idempotent). ``param_mapping`` is ignored:
        mappings live on :class:`~routilux.connection.Connection`.
        """
        if event not in self.connected_events:
            self.connected_events.append(event)
        if self not in event.connected_slots:
            event.connected_slots.append(self)

    def disconnect(self, event: Event) -> None:
        """
        Remove the link with ``event`` both ways; a no-op when not linked.
        """
        if event in self.connected_events:
            self.connected_events.remove(event)
        if self in event.connected_slots:
            event.connected_slots.remove(self)

    def serialize(self) -> dict[str, Any]:
        """
        Return the slot as data: name, merge strategy and handler (a method name of its
        routine or a registered callable name).

        Raises:
            SerializationError: The handler or merge strategy is a lambda or closure.
        """
        from routilux.codec._slots import dump_slot

        return dump_slot(self)

    def deserialize(self, data: dict[str, Any]) -> None:
        """
        Restore name, merge strategy and handler from :meth:`serialize` output; ``data``
        is not changed and nothing it names is imported.
        """
        from routilux.codec._slots import load_slot_into

        load_slot_into(self, data)

    def _merge_data(self, new: dict[str, Any]) -> Any:
        with self._lock:
            self._data, merged = merge(self.merge_strategy, self._data, new)
        return merged

    def receive(self, data: dict[str, Any]) -> None:
        """
        Deliver ``data`` to this slot on its own (outside any job's scheduler): merge it into
        ``_data`` and call the handler. Handler errors are logged and swallowed; merge
        errors propagate.
        """
        self.call_handler(data, propagate_exceptions=False)

    def call_handler(self, data: dict[str, Any], propagate_exceptions: bool = False) -> None:
        """
        Like :meth:`receive`, but re-raise handler errors when ``propagate_exceptions``.

        An ``async def`` handler is run to completion on routilux's background event loop
        (this call waits for it).

        Raises:
            ExecutionContextError: The handler is ``async def`` and this thread runs an
                event loop, where waiting for it would block that loop.
        """
        if self._is_async:
            from routilux.model._loop import refuse_standalone_on_loop

            refuse_standalone_on_loop()
        merged = self._merge_data(data)
        if self._call is None:
            return
        try:
            result = self._call(merged)
            if self._is_async:
                from routilux.model._loop import run_async

                run_async(result)
        except Exception as exc:
            if propagate_exceptions:
                raise
            from routilux.model._context import record_standalone_error

            record_standalone_error(self, exc)
