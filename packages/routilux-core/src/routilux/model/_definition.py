"""
The static definition of a flow: its routines, the connections from their events to their
slots, its error handler and the settings of its jobs (what ``Flow`` runs).
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any, cast

from routilux.exceptions import (
    ConfigurationError,
    DuplicateNameError,
    EventNotFoundError,
    RoutineNotFoundError,
    SlotNotFoundError,
)
from routilux.model._connection import Connection
from routilux.model._context import current_frame
from routilux.model._error_handler import ErrorHandler
from routilux.model._routine import Routine
from routilux.model._slot import Slot


if TYPE_CHECKING:
    from routilux.model._event import Event
    from routilux.model._job_state import JobState


__all__ = [
    "EXECUTION_STRATEGIES",
    "FlowDefinition",
    "check_strategy",
    "check_workers",
    "default_entry_slot",
    "entry_slot",
]


EXECUTION_STRATEGIES = ("sequential", "concurrent")
"""The accepted values of ``execution_strategy``."""


def check_strategy(strategy: Any) -> str:
    if strategy not in EXECUTION_STRATEGIES:
        msg = f"Invalid execution strategy: {strategy!r} (expected 'sequential' or 'concurrent')"
        raise ConfigurationError(msg, name="execution_strategy", value=strategy)
    return str(strategy)


def check_workers(value: Any, name: str = "max_workers") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{name} must be an int >= 1, got {value!r}"
        raise ConfigurationError(msg, name=name, value=value)
    return value


class _JobStateView:
    """
    ``flow._current_execution_job_state.value``: the JobState of the job of this flow that
    the calling code runs for, or ``None`` (kept for code written against the original).

    Code outside the flow's jobs may set it, as the original's thread-local: then, in that
    thread, the flow's routines find that job through ``get_execution_context()`` (and so
    ``send_output`` and ``emit_deferred_event`` work); inside a job's handler the running
    job wins. Set it back to ``None`` when done.
    """

    __slots__ = ("_flow", "_local")

    def __init__(self, flow: FlowDefinition) -> None:
        self._flow = flow
        self._local = threading.local()

    @property
    def value(self) -> JobState | None:
        frame = current_frame()
        if frame is not None and frame.run.flow is self._flow:
            return frame.run.job_state
        return self.assigned

    @value.setter
    def value(self, job_state: JobState | None) -> None:
        self._local.value = job_state

    @property
    def assigned(self) -> JobState | None:
        """The JobState the calling thread set, or ``None``."""
        job_state: JobState | None = getattr(self._local, "value", None)
        return job_state


class FlowDefinition:
    """
    What a flow is, apart from running it: routines by id, the connections from their
    events to their slots, the flow-level error handler and the defaults of its jobs.
    :class:`routilux.Flow` is the flow that runs jobs; the model, the documents and the
    plugins see it through this class (and call its job controls, which it implements).

    Args:
        flow_id: The flow's id (a new UUID when empty).
        execution_strategy: ``"sequential"`` or ``"concurrent"``.
        max_workers: Worker threads for sync handlers (forced to 1 when sequential).
        max_async: How many ``async def`` activations may run at once.
        history_limit: Give each job a bounded history (see ``JobState.history_limit``).

    Raises:
        ConfigurationError: An unknown strategy or a bad worker count (a ``ValueError``).
    """

    def __init__(
        self,
        flow_id: str | None = None,
        execution_strategy: str = "sequential",
        max_workers: int = 5,
        *,
        max_async: int = 32,
        history_limit: int | None = None,
    ) -> None:
        strategy = check_strategy(execution_strategy)
        check_workers(max_workers)
        #: The flow's id.
        self.flow_id: str = flow_id or str(uuid.uuid4())
        #: The default strategy of the flow's jobs.
        self.execution_strategy: str = strategy
        #: Worker threads for sync handlers.
        self.max_workers: int = max_workers if strategy == "concurrent" else 1
        #: Coroutine activations that may run at once.
        self.max_async: int = check_workers(max_async, "max_async")
        #: History limit given to each new job.
        self.history_limit = history_limit
        #: Routines by flow routine id, in the order they were added.
        self.routines: dict[str, Routine] = {}
        #: Connections, in the order they were made.
        self.connections: list[Connection] = []
        #: The flow-level error handler (routine-level handlers take precedence).
        self.error_handler: ErrorHandler | None = None
        self._event_slot_connections: dict[tuple[Event, Slot], Connection] = {}
        self._ids: dict[int, str] = {}
        self._current_execution_job_state = _JobStateView(self)

    def __repr__(self) -> str:
        return f"Flow[{self.flow_id}]"

    # -- the job controls (implemented by routilux.Flow) ------------------------------

    def pause(
        self, job_state: JobState, reason: str = "", checkpoint: dict[str, Any] | None = None
    ) -> None:
        """
        Pause one job of this flow (see :meth:`routilux.Flow.pause`).
        """
        raise NotImplementedError

    def resume(self, job_state: JobState) -> JobState:
        """
        Resume one job of this flow (see :meth:`routilux.Flow.resume`).
        """
        raise NotImplementedError

    def retry(self, job_state: JobState) -> JobState:
        """
        Run a failed job of this flow again (see :meth:`routilux.Flow.retry`).
        """
        raise NotImplementedError

    def cancel(self, job_state: JobState, reason: str = "") -> None:
        """
        Cancel one job of this flow (see :meth:`routilux.Flow.cancel`).
        """
        raise NotImplementedError

    # -- building -------------------------------------------------------------------

    def add_routine(self, routine: Routine, routine_id: str | None = None) -> str:
        """
        Add ``routine`` under ``routine_id`` (its own ``_id`` when not given) and return the
        id. The routine's ``_id`` becomes that id.

        Raises:
            DuplicateNameError: The id is taken.
        """
        if not isinstance(cast(object, routine), Routine):
            msg = f"add_routine expects a Routine, got {routine!r}"
            raise ConfigurationError(msg, name="routine", value=routine)
        rid = routine_id or routine._id
        if rid in self.routines:
            msg = f"Routine ID '{rid}' already exists in flow {self.flow_id!r}"
            raise DuplicateNameError(msg, name=rid)
        self.routines[rid] = routine
        self._ids.setdefault(id(routine), rid)
        routine._id = rid
        routine._flow = self
        return rid

    def _routine(self, routine_id: str, role: str) -> Routine:
        routine = self.routines.get(routine_id)
        if routine is None:
            known = ", ".join(repr(r) for r in self.routines) or "none"
            msg = (
                f"{role} routine '{routine_id}' not found in flow {self.flow_id!r} "
                f"(routines: {known})"
            )
            raise RoutineNotFoundError(msg, name=routine_id)
        return routine

    def connect(
        self,
        source_routine_id: str,
        source_event: str,
        target_routine_id: str,
        target_slot: str,
        param_mapping: dict[str, str] | None = None,
    ) -> Connection:
        """
        Connect an event of one routine to a slot of another (or the same) routine.

        Args:
            param_mapping: Payload keys to rename on the way, ``{source key: slot key}``.

        Raises:
            RoutineNotFoundError: A routine id is unknown.
            EventNotFoundError: The source routine has no such event.
            SlotNotFoundError: The target routine has no such slot.
        """
        source = self._routine(source_routine_id, "Source")
        event = source.get_event(source_event)
        if event is None:
            known = ", ".join(repr(e) for e in source._events) or "none"
            msg = (
                f"Event '{source_event}' not found in routine '{source_routine_id}' "
                f"(events: {known})"
            )
            raise EventNotFoundError(msg, name=source_event)
        target = self._routine(target_routine_id, "Target")
        slot = target.get_slot(target_slot)
        if slot is None:
            known = ", ".join(repr(s) for s in target._slots) or "none"
            msg = (
                f"Slot '{target_slot}' not found in routine '{target_routine_id}' (slots: {known})"
            )
            raise SlotNotFoundError(msg, name=target_slot)
        connection = Connection(event, slot, param_mapping)
        connection.source_routine_id = source_routine_id
        connection.target_routine_id = target_routine_id
        self.connections.append(connection)
        self._event_slot_connections[(event, slot)] = connection
        return connection

    def set_error_handler(self, error_handler: ErrorHandler | None) -> None:
        """
        Set the flow-level error handler, used for routines without their own.
        """
        if error_handler is not None and not isinstance(cast(object, error_handler), ErrorHandler):
            msg = f"error_handler must be an ErrorHandler or None, got {error_handler!r}"
            raise ConfigurationError(msg, name="error_handler", value=error_handler)
        self.error_handler = error_handler

    # -- lookups --------------------------------------------------------------------

    def routine_id_of(self, routine: Routine) -> str | None:
        """
        Return the id ``routine`` was added under, or ``None`` when this flow does not hold
        it (an identity lookup).
        """
        return self._ids.get(id(routine))

    #: The original's name of :meth:`routine_id_of` (SPEC 7.8), kept for code written against it.
    _get_routine_id = routine_id_of

    def error_handler_for(self, routine: Routine | None) -> ErrorHandler | None:
        """
        Return the error handler that applies to ``routine``: its own, else the flow's,
        else ``None`` (the default treatment).
        """
        own = routine._error_handler if routine is not None else None
        return own if own is not None else self.error_handler

    def _get_error_handler_for_routine(
        self, routine: Routine | None, routine_id: str | None = None
    ) -> ErrorHandler | None:
        """
        The original's :meth:`error_handler_for`: ``routine_id`` is accepted for its
        signature; the routine decides.
        """
        return self.error_handler_for(routine)

    def _build_dependency_graph(self) -> dict[str, set[str]]:
        """
        Each routine id with the ids of the routines that feed it (see
        :func:`routilux.flow.dependency.build_dependency_graph`; the scheduler does not use it).
        """
        from routilux.model._dependency import build_dependency_graph

        return build_dependency_graph(self.routines, self.connections)

    def _get_ready_routines(
        self, completed: set[str], graph: dict[str, set[str]], running: set[str]
    ) -> list[str]:
        """
        The routine ids of ``graph`` whose sources are all completed and that neither ran
        nor run (see :func:`routilux.flow.dependency.get_ready_routines`).
        """
        from routilux.model._dependency import get_ready_routines

        return get_ready_routines(completed, graph, running)

    def _find_connection(self, event: Event, slot: Slot) -> Connection | None:
        return self._event_slot_connections.get((event, slot))

    def connection_between(
        self, source_id: Any, event_name: Any, target_id: Any, slot_name: Any
    ) -> Connection | None:
        """
        Return the connection from event ``event_name`` of routine ``source_id`` to slot
        ``slot_name`` of routine ``target_id``, or ``None``.
        """
        for conn in self.connections:
            if (
                conn.source_routine_id == source_id
                and conn.target_routine_id == target_id
                and conn.source_event is not None
                and conn.source_event.name == event_name
                and conn.target_slot is not None
                and conn.target_slot.name == slot_name
            ):
                return conn
        return None

    def targets_of(self, event: Event) -> list[tuple[str | None, Slot, Connection | None]]:
        """
        Return where an emit of ``event`` is delivered in a job of this flow, in connection
        order: (flow routine id, slot, connection) of each connected slot of a routine of
        the flow (or of no routine).
        """
        out: list[tuple[str | None, Slot, Connection | None]] = []
        ids = self._ids
        conns = self._event_slot_connections
        for slot in event.connected_slots:
            routine = slot.routine
            if routine is None:
                out.append((None, slot, conns.get((event, slot))))
                continue
            rid = ids.get(id(routine))
            if rid is not None:
                out.append((rid, slot, conns.get((event, slot))))
        return out

    # -- persistence ------------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """
        Return the flow's definition as plain JSON-able data (no job state).
        """
        from routilux.codec._flows import dump_flow

        return dump_flow(self)

    def deserialize(self, data: dict[str, Any]) -> None:
        """
        Rebuild this flow from :meth:`serialize` output: routines by registered type name,
        connections by routine ids. ``data`` is not changed and nothing it names is
        imported or executed.

        Raises:
            DeserializationError: ``data`` is malformed or names an unknown type.
        """
        from routilux.codec._flows import load_flow_into

        load_flow_into(self, data)

    def redefine(
        self,
        *,
        flow_id: str,
        execution_strategy: str,
        max_workers: int,
        max_async: int,
        history_limit: int | None,
        error_handler: ErrorHandler | None,
    ) -> None:
        """
        Start the definition over with these settings and no routine or connection (what
        loading a flow document does before it adds them again). Jobs already running are
        not touched.
        """
        self.flow_id = flow_id
        self.execution_strategy = check_strategy(execution_strategy)
        self.max_workers = max_workers if execution_strategy == "concurrent" else 1
        self.max_async = max_async
        self.history_limit = history_limit
        self.error_handler = error_handler
        self.routines = {}
        self.connections = []
        self._event_slot_connections = {}
        self._ids = {}


def default_entry_slot(routine: Routine) -> str | None:
    """
    Return the slot a job entering at ``routine`` is delivered to when none is named:
    ``trigger``, else ``input``, else the routine's only slot; ``None`` when there is no
    such slot. The command line and the job stores choose the same way.
    """
    slots = list(routine._slots)
    for name in ("trigger", "input"):
        if name in slots:
            return name
    return slots[0] if len(slots) == 1 else None


def entry_slot(routine_id: str, routine: Routine, name: str | None) -> Slot:
    """
    Return the slot of ``routine`` (added as ``routine_id``) a job entering there is
    delivered to: the slot ``name``, else :func:`default_entry_slot`'s. When there is no
    such slot, a slot whose handler raises :class:`~routilux.exceptions.SlotNotFoundError`
    naming the slots there are (the job fails with that error, as for any entry error).
    """
    if name is None:
        name = default_entry_slot(routine)
    slot = routine.get_slot(name) if name is not None else None
    if slot is not None:
        return slot
    missing_name = name or "trigger"

    def missing(**_: Any) -> None:
        known = ", ".join(repr(s) for s in routine._slots) or "none"
        msg = (
            f"Entry routine '{routine_id}' has no {missing_name!r} slot (slots: {known}); "
            f"define one with define_slot({missing_name!r}, handler) or pass entry_slot="
        )
        raise SlotNotFoundError(msg, name=missing_name)

    return Slot(missing_name, routine, missing)
