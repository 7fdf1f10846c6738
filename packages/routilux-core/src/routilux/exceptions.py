"""
The exceptions and warnings routilux raises.

Every exception derives from :class:`RoutiluxError` and also from the built-in that
the original library raised in the same place (mostly :class:`ValueError`), so code
written as ``except ValueError`` keeps working.
"""

from __future__ import annotations

from typing import Any


__all__ = [
    "ActivationTimeout",
    "ConfigurationError",
    "ConfigurationTypeError",
    "DeserializationError",
    "DuplicateNameError",
    "EventNotFoundError",
    "ExecutionContextError",
    "FlowMismatchError",
    "GraphvizError",
    "GraphvizNotFoundError",
    "InvalidStateError",
    "JobDeadlineExceeded",
    "JobNotFoundError",
    "JobStateError",
    "JobStoreError",
    "PluginError",
    "RegistryError",
    "RoutiluxError",
    "RoutiluxWarning",
    "RoutineNotFoundError",
    "SchedulerShutdownError",
    "SerializationError",
    "SlotNotFoundError",
    "StaleAttemptError",
    "UnknownRoutineTypeError",
    "UsageError",
]


class RoutiluxError(Exception):
    """
    The root of every exception routilux raises.
    """


class ConfigurationError(RoutiluxError, ValueError):
    """
    A setting has a value it cannot take (a strategy, a worker count, a retry delay...).

    Attributes:
        name: The setting's name.
        value: The rejected value.
    """

    def __init__(self, message: str, *, name: str = "", value: Any = None) -> None:
        super().__init__(message)
        #: The setting's name.
        self.name = name
        #: The rejected value.
        self.value = value


class ConfigurationTypeError(ConfigurationError, TypeError):
    """
    An argument of the wrong kind (a list where a mapping is expected, a string where a
    callable is): a :class:`ConfigurationError` that is also the :class:`TypeError` Python
    would raise later, when the value is used.
    """


class DuplicateNameError(RoutiluxError, ValueError):
    """
    A routine id, slot name or event name is already taken.

    Attributes:
        name: The name that is taken.
    """

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        #: The name that is taken.
        self.name = name


class _NotFound(RoutiluxError, ValueError, LookupError):
    """
    Shared base of the "unknown name" errors; private so users catch the public ones.
    """

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        #: The name that was looked up.
        self.name = name

    def __str__(self) -> str:
        # LookupError's KeyError-style quoting does not apply: show the message as written.
        return str(self.args[0]) if self.args else ""


class RoutineNotFoundError(_NotFound):
    """
    No routine has this id in the flow.
    """


class EventNotFoundError(_NotFound):
    """
    The routine declares no event of this name.
    """


class SlotNotFoundError(_NotFound):
    """
    The routine declares no slot of this name (including a missing ``trigger`` entry slot).
    """


class FlowMismatchError(RoutiluxError, ValueError):
    """
    A JobState was handed to a Flow whose ``flow_id`` does not match its own.
    """


class ExecutionContextError(RoutiluxError, RuntimeError):
    """
    A call that needs a running job (``send_output``, ``emit_deferred_event``...) was made
    outside one, or a blocking call was made where it would deadlock.
    """


class InvalidStateError(RoutiluxError, RuntimeError):
    """
    An operation is not valid in the current state of a job or scheduler.
    """


class JobStateError(RoutiluxError, ValueError):
    """
    An action (pause, resume, cancel, retry...) that the job's status does not allow, by the
    job lifecycle's transition table (``routilux.lifecycle``): for example resuming a
    cancelled job, or resuming a failed one (retry it instead).

    Attributes:
        job_id: The job.
        status: Its status when the action was refused.
        action: The refused action.

    .. versionadded:: 0.10
    """

    def __init__(
        self, message: str, *, job_id: str = "", status: str = "", action: str = ""
    ) -> None:
        super().__init__(message)
        #: The job.
        self.job_id = job_id
        #: Its status when the action was refused.
        self.status = status
        #: The refused action.
        self.action = action


class ActivationTimeout(RoutiluxError, TimeoutError):
    """
    A handler ran past its slot's timeout (``define_slot(..., timeout=seconds)``, or the
    routine's ``slot_timeout`` config). It goes down the routine's error strategy like any
    handler error (RETRY retries it). An ``async def`` handler was cancelled; a sync one
    cannot be stopped: what it returns or emits after this is discarded (see
    ``docs/timeouts.md``).

    Attributes:
        routine_id: The routine.
        slot: The slot.
        timeout: The timeout, in seconds.

    .. versionadded:: 0.10
    """

    def __init__(
        self, message: str, *, routine_id: str = "", slot: str = "", timeout: float = 0.0
    ) -> None:
        super().__init__(message)
        #: The routine.
        self.routine_id = routine_id
        #: The slot.
        self.slot = slot
        #: The timeout, in seconds.
        self.timeout = timeout


class JobDeadlineExceeded(RoutiluxError, TimeoutError):
    """
    A job ran past its deadline (``flow.execute(..., deadline=seconds)``, ``routilux run
    --deadline``) and was failed: its queued and waiting work is kept in its failed tasks,
    so that ``Flow.retry`` goes on with it.

    Attributes:
        job_id: The job.
        deadline: The deadline, in seconds from the start (or resume) of the run.

    .. versionadded:: 0.10
    """

    def __init__(self, message: str, *, job_id: str = "", deadline: float = 0.0) -> None:
        super().__init__(message)
        #: The job.
        self.job_id = job_id
        #: The deadline, in seconds from the start (or resume) of the run.
        self.deadline = deadline


class SchedulerShutdownError(InvalidStateError):
    """
    The flow's worker pool was shut down while work was being handed to it.
    """


class SerializationError(RoutiluxError, ValueError):
    """
    An object cannot be written as data (for example a lambda used as a handler).

    Attributes:
        path: Where in the object the problem is, as a dotted path.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        #: Where in the object the problem is.
        self.path = path


class DeserializationError(RoutiluxError, ValueError):
    """
    A document cannot be loaded: wrong type, missing field, unknown type name, bad version...

    Attributes:
        path: The path of the bad field in the document, such as ``routines.s1.config``.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        full = f"{path}: {message}" if path else message
        super().__init__(full)
        #: The path of the bad field in the document.
        self.path = path
        #: The message without the path.
        self.reason = message


class RegistryError(RoutiluxError, ValueError):
    """
    A routine type or callable cannot be registered (for example two classes under one name).
    """


class UnknownRoutineTypeError(RegistryError, LookupError):
    """
    No routine class is registered under this name.

    Attributes:
        name: The name that was looked up.
    """

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        #: The name that was looked up.
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PluginError(RoutiluxError, RuntimeError):
    """
    A plugin is malformed (its hooks do not match the hook specifications).

    Attributes:
        plugin: The offending plugin object (or entry-point name), when known.
    """

    def __init__(self, message: str, *, plugin: object = None) -> None:
        super().__init__(message)
        #: The offending plugin object (or entry-point name), when known.
        self.plugin = plugin


class JobStoreError(RoutiluxError, RuntimeError):
    """
    A job store cannot do what was asked (a job is in the wrong status, a row is missing...).

    Attributes:
        job_id: The job concerned, when there is one.
    """

    def __init__(self, message: str, *, job_id: str = "") -> None:
        super().__init__(message)
        #: The job concerned, when there is one.
        self.job_id = job_id


class JobNotFoundError(JobStoreError, LookupError):
    """
    The job store has no job (or no flow) under this id.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StaleAttemptError(JobStoreError):
    """
    A checkpoint was refused because the job was claimed again since this runner claimed it
    (the fencing token moved on): this runner must stop without writing.

    Attributes:
        attempt: The attempt this runner holds.
        current: The attempt the store holds.
    """

    def __init__(
        self, message: str, *, job_id: str = "", attempt: int = 0, current: int = 0
    ) -> None:
        super().__init__(message, job_id=job_id)
        #: The attempt this runner holds.
        self.attempt = attempt
        #: The attempt the store holds.
        self.current = current


class UsageError(RoutiluxError, ValueError):
    """
    Bad input or usage of the ``routilux`` command (an option out of range, a missing
    ``--dsn``): the command prints it as one line, ``routilux: error: ...``, and exits with
    code 2 (:data:`routilux.cli.EXIT_BAD_INPUT`). Subcommands added through the
    ``routilux.commands`` entry points raise it for their own options.

    .. versionadded:: 0.10
    """


class GraphvizError(RoutiluxError, RuntimeError):
    """
    Graphviz's ``dot`` program could not draw a picture (:func:`routilux.graph.render_image`).

    Attributes:
        program: The program that was run (``"dot"``).
        returncode: Its exit code (``None`` when it could not be started).
        stderr: What it wrote to its standard error.

    .. versionadded:: 0.10
    """

    def __init__(
        self, message: str, *, program: str = "dot", returncode: int | None = None, stderr: str = ""
    ) -> None:
        super().__init__(message)
        #: The program that was run (``"dot"``).
        self.program = program
        #: Its exit code (``None`` when it could not be started).
        self.returncode = returncode
        #: What it wrote to its standard error.
        self.stderr = stderr


class GraphvizNotFoundError(GraphvizError, FileNotFoundError):
    """
    Graphviz's ``dot`` program is not installed (not on ``PATH``): SVG and PNG pictures need
    the ``graphviz`` system package. The DOT and Mermaid texts do not.

    .. versionadded:: 0.10
    """


class RoutiluxWarning(UserWarning):
    """
    The category of every warning routilux issues.
    """
