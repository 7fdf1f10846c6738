"""
Routine: a workflow node that declares input slots and output events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast

from routilux.exceptions import DuplicateNameError, EventNotFoundError, ExecutionContextError
from routilux.model._context import current_frame
from routilux.model._error_handler import ErrorHandler, ErrorStrategy
from routilux.model._event import Event
from routilux.model._slot import MergeStrategy, Slot


if TYPE_CHECKING:
    from routilux.model._definition import FlowDefinition as Flow
    from routilux.model._job_state import JobState

__all__ = ["ExecutionContext", "Routine"]


class ExecutionContext(NamedTuple):
    """
    The job a handler runs for: ``flow, job_state, routine_id = ctx``.
    """

    #: The flow running the job.
    flow: Flow
    #: The job's state.
    job_state: JobState
    #: The flow routine id of the routine the handler belongs to.
    routine_id: str

    @property
    def idempotency_key(self) -> str | None:
        """
        A key that names the running activation the same way in every run of this job,
        including a re-run after a crash or a pause (``"<job_id>:<sequence number>"``).
        ``None`` outside a handler.
        """
        frame = current_frame()
        if frame is None or frame.activation is None or frame.run.job_state is not self.job_state:
            return None
        return f"{self.job_state.job_id}:{frame.activation.seq}"

    @property
    def source_routine_id(self) -> str | None:
        """
        The flow routine id of the routine whose event delivered the running activation
        (``None`` for the entry trigger, a resumed deferred event's own routine aside, or
        a slot linked without ``Flow.connect``).

        .. versionadded:: 0.10
        """
        frame = current_frame()
        if frame is None or frame.activation is None or frame.run.job_state is not self.job_state:
            return None
        conn = frame.activation.connection
        return conn.source_routine_id if conn is not None else None


class Routine:
    """
    A workflow node. Subclasses declare slots with :meth:`define_slot` and events with
    :meth:`define_event` in ``__init__`` and keep static settings in the config.

    A Routine is a definition: running it never changes it, so one object can serve any
    number of concurrent jobs. Everything a run changes lives in the job's
    :class:`~routilux.job_state.JobState`.

    The config keys a constructor sets with :meth:`set_config` are the routine's config
    keys: a flow file read by :func:`routilux.store.load_flow_file` (``routilux run``) may
    set only those, unless the constructor sets none or the class sets :attr:`open_config`.
    """

    #: Whether a flow file may set config keys the constructor does not set (``False``: a
    #: key the defaults do not have is refused as a likely misspelling). Set it ``True`` in
    #: a class whose code reads keys of its config it does not declare, such as
    #: ConditionalRouter, whose conditions read any key.
    #:
    #: .. versionadded:: 0.10
    open_config: ClassVar[bool] = False

    _id: str
    _slots: dict[str, Slot]
    _events: dict[str, Event]
    _config: dict[str, Any]
    _error_handler: ErrorHandler | None

    def __init__(self) -> None:
        self._id = hex(id(self))
        self._slots = {}
        self._events = {}
        self._config = {}
        self._error_handler = None
        self._flow: Flow | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}[{self._id}]"

    # -- declaration ----------------------------------------------------------------

    def define_slot(
        self,
        name: str,
        handler: Callable[..., Any] | None = None,
        merge_strategy: MergeStrategy = "override",
        *,
        timeout: float | None = None,
    ) -> Slot:
        """
        Declare an input slot and return it.

        Args:
            name: The slot's name, unique within the routine. The slot named ``trigger``
                is the one ``Flow.execute`` calls on the entry routine.
            handler: Called with delivered data (see the handler rules in the docs);
                may be an ``async def``.
            merge_strategy: ``"override"``, ``"append"`` or ``f(accumulated, new)``.
            timeout: Seconds the handler may run (by default the routine's
                ``slot_timeout`` config, else no limit); past it, the activation fails with
                :class:`~routilux.exceptions.ActivationTimeout` (see ``docs/timeouts.md``).

        Raises:
            DuplicateNameError: The routine already has a slot of that name.
            ConfigurationError: ``timeout`` is not a number of seconds > 0.

        .. versionchanged:: 0.10 ``timeout``.
        """
        if name in self._slots:
            msg = f"Slot '{name}' already exists in {self!r}"
            raise DuplicateNameError(msg, name=name)
        slot = Slot(name, self, handler, merge_strategy, timeout=timeout)
        self._slots[name] = slot
        return slot

    def define_event(self, name: str, output_params: list[str] | None = None) -> Event:
        """
        Declare an output event and return it. ``output_params`` documents the payload keys.

        Raises:
            DuplicateNameError: The routine already has an event of that name.
        """
        if name in self._events:
            msg = f"Event '{name}' already exists in {self!r}"
            raise DuplicateNameError(msg, name=name)
        event = Event(name, self, output_params or [])
        self._events[name] = event
        return event

    def get_slot(self, name: str) -> Slot | None:
        """
        Return the slot called ``name``, or ``None``.
        """
        return self._slots.get(name)

    def get_event(self, name: str) -> Event | None:
        """
        Return the event called ``name``, or ``None``.
        """
        return self._events.get(name)

    def get_slots(self) -> dict[str, Slot]:
        """
        Return the routine's slots by name, in the order they were declared (a new dict).

        .. versionadded:: 0.10
        """
        return dict(self._slots)

    def get_events(self) -> dict[str, Event]:
        """
        Return the routine's events by name, in the order they were declared (a new dict).

        .. versionadded:: 0.10
        """
        return dict(self._events)

    def get_id(self) -> str:
        """
        Return the routine's id: the flow routine id it was added under, or the generated
        unique id it has before it is added to a flow (``_id`` is the same value).

        .. versionadded:: 0.10
        """
        return self._id

    def set_id(self, routine_id: str) -> None:
        """
        Give the routine the id a document says it has (what loading a routine does).
        Adding the routine to a flow gives it the flow routine id instead.

        .. versionadded:: 0.10
        """
        self._id = routine_id

    # -- config ---------------------------------------------------------------------

    def set_config(self, **kwargs: Any) -> None:
        """
        Update the routine's static configuration.
        """
        self._config.update(kwargs)

    def merge_config(self, config: Mapping[str, Any]) -> None:
        """
        Merge ``config`` into the routine's configuration as it is: what loading a
        document does. Unlike :meth:`set_config`, which a subclass may override to check
        what it is given, this takes any string key; a class checks a loaded config in
        its ``deserialize_config`` hook instead.

        .. versionadded:: 0.10
        """
        self._config.update(config)

    def get_config(self, key: str, default: Any = None) -> Any:
        """
        Return one configuration value, or ``default``.
        """
        return self._config.get(key, default)

    def config(self) -> dict[str, Any]:
        """
        Return a shallow copy of the configuration.
        """
        return dict(self._config)

    # -- error handling settings ----------------------------------------------------

    def set_error_handler(self, error_handler: ErrorHandler | None) -> None:
        """
        Set the routine's own error handler (it takes precedence over the flow's).
        """
        if error_handler is not None and not isinstance(cast(object, error_handler), ErrorHandler):
            from routilux.exceptions import ConfigurationError

            msg = f"error_handler must be an ErrorHandler or None, got {error_handler!r}"
            raise ConfigurationError(msg, name="error_handler", value=error_handler)
        self._error_handler = error_handler

    def get_error_handler(self) -> ErrorHandler | None:
        """
        Return the routine's own error handler, or ``None``.
        """
        return self._error_handler

    def set_as_optional(self, strategy: ErrorStrategy | None = None) -> None:
        """
        Let the job go on when this routine fails (CONTINUE, or the strategy given).
        """
        self._error_handler = ErrorHandler(
            strategy=strategy or ErrorStrategy.CONTINUE, is_critical=False
        )

    def set_as_critical(
        self, max_retries: int = 3, retry_delay: float = 1.0, retry_backoff: float = 2.0
    ) -> None:
        """
        Retry this routine on error, and fail the job when the retries run out.
        """
        self._error_handler = ErrorHandler(
            strategy=ErrorStrategy.RETRY,
            max_retries=max_retries,
            retry_delay=retry_delay,
            retry_backoff=retry_backoff,
            is_critical=True,
        )

    # -- running --------------------------------------------------------------------

    @property
    def _current_flow(self) -> Flow | None:
        """
        The flow of the job running now, if this routine belongs to it; else the flow the
        routine was last added to (``None`` before any).
        """
        frame = current_frame()
        if frame is not None and frame.run.flow.routine_id_of(self) is not None:
            return frame.run.flow
        return self._flow

    @_current_flow.setter
    def _current_flow(self, flow: Flow | None) -> None:
        self._flow = flow

    def get_execution_context(self) -> ExecutionContext | None:
        """
        Return ``ExecutionContext(flow, job_state, routine_id)`` of the job running this
        code, or ``None`` outside a job of a flow this routine belongs to (unless the calling
        thread set ``flow._current_execution_job_state.value`` by hand).
        """
        frame = current_frame()
        if frame is None:
            return self._assigned_context()
        run = frame.run
        act = frame.activation
        if (
            act is not None
            and act.routine_id is not None
            and (run.flow.routines.get(act.routine_id) is self)
        ):
            return ExecutionContext(run.flow, run.job_state, act.routine_id)
        routine_id = run.flow.routine_id_of(self)
        if routine_id is None:
            return None
        return ExecutionContext(run.flow, run.job_state, routine_id)

    def _assigned_context(self) -> ExecutionContext | None:
        # Outside any job: the job the calling thread assigned to this routine's flow by
        # hand (``flow._current_execution_job_state.value = job_state``), if any.
        flow = self._flow
        if flow is None:
            return None
        job_state = flow._current_execution_job_state.assigned
        routine_id = flow.routine_id_of(self) if job_state is not None else None
        if job_state is None or routine_id is None:
            return None
        return ExecutionContext(flow, job_state, routine_id)

    def _require_context(self, what: str) -> ExecutionContext:
        ctx = self.get_execution_context()
        if ctx is None:
            msg = (
                f"{what} needs an execution context: call it from a handler of a running "
                f"job ({self!r})"
            )
            raise ExecutionContextError(msg)
        return ctx

    def emit(self, event_name: str, flow: Flow | None = None, **kwargs: Any) -> None:
        """
        Emit one of this routine's events with ``kwargs`` as the payload.

        Inside a job this records the event in the job's history and queues one
        activation per connected slot; it never blocks and never runs a handler inline.
        Outside any job, connected slots receive the payload synchronously.

        Raises:
            EventNotFoundError: The routine has no such event.
        """
        event = self._events.get(event_name)
        if event is None:
            msg = f"Event '{event_name}' does not exist in {self!r}"
            raise EventNotFoundError(msg, name=event_name)
        frame = current_frame()
        if frame is not None and (flow is None or flow is frame.run.flow):
            frame.run.emit_event(event, kwargs, frame)
            return
        event.emit(flow, **kwargs)

    def send_output(self, output_type: str, **data: Any) -> None:
        """
        Send output of the running job to its output handler (and its output log).

        Raises:
            ExecutionContextError: Not called from a handler of a running job.
        """
        ctx = self._require_context("send_output")
        ctx.job_state.send_output(ctx.routine_id, output_type, data)

    def emit_deferred_event(self, event_name: str, **kwargs: Any) -> None:
        """
        Store an event in the job to be emitted when the job is resumed.

        Raises:
            ExecutionContextError: Not called from a handler of a running job.
        """
        ctx = self._require_context("emit_deferred_event")
        ctx.job_state.add_deferred_event(ctx.routine_id, event_name, kwargs)

    def _extract_input_data(self, data: Any = None, **kwargs: Any) -> Any:
        """
        Normalise a handler's input: ``data`` if given, else ``kwargs["data"]``, else the
        only value, else all of ``kwargs``, else ``{}``.
        """
        if data is not None:
            return data
        if "data" in kwargs:
            return kwargs["data"]
        if len(kwargs) == 1:
            return next(iter(kwargs.values()))
        if kwargs:
            return kwargs
        return {}

    def __call__(self, **kwargs: Any) -> None:
        """
        Deprecated no-op kept for compatibility; flows never call it.
        """

    # -- persistence ----------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """
        Return the routine as data: its registered type name, config, error handler,
        slots and events.
        """
        from routilux.codec._routines import dump_routine

        return dump_routine(self)

    def deserialize(self, data: dict[str, Any], registry: Any = None) -> None:
        """
        Restore config, error handler, slots and events from :meth:`serialize` output.
        ``data`` is not changed.
        """
        from routilux.codec._routines import load_routine_into

        load_routine_into(self, data)
