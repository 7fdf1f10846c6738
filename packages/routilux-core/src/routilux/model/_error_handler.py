"""
ErrorHandler and ErrorStrategy: what a job does when a routine's handler raises.
"""

from __future__ import annotations

import enum
import threading
import time
from typing import TYPE_CHECKING, Any

from routilux._util._log import logger, repr_of, text_of
from routilux.exceptions import ConfigurationError


if TYPE_CHECKING:
    from routilux.model._definition import FlowDefinition as Flow
    from routilux.model._routine import Routine

__all__ = ["ErrorHandler", "ErrorStrategy"]


class ErrorStrategy(str, enum.Enum):
    """
    What to do when a handler raises.
    """

    #: Fail the job; nothing new of it starts.
    STOP = "stop"
    #: Record the error and go on.
    CONTINUE = "continue"
    #: Run the activation again after a delay, a bounded number of times.
    RETRY = "retry"
    #: Mark the routine skipped for that activation and go on.
    SKIP = "skip"

    def __str__(self) -> str:
        return self.value


def _strategy(value: Any) -> ErrorStrategy:
    if isinstance(value, ErrorStrategy):
        return value
    if isinstance(value, str):
        try:
            return ErrorStrategy(value.lower())
        except ValueError:
            pass
    names = ", ".join(s.value for s in ErrorStrategy)
    msg = f"strategy must be an ErrorStrategy ({names}), got {value!r}"
    raise ConfigurationError(msg, name="strategy", value=value)


class ErrorHandler:
    """
    The error strategy of a routine (``Routine.set_error_handler``) or of a whole flow
    (``Flow.set_error_handler``).

    The scheduler keeps retry budgets per job and per activation, so one handler can be
    shared by routines and jobs; :attr:`retry_count` only mirrors the last decision.

    Args:
        strategy: An :class:`ErrorStrategy` or its value (``"retry"``...).
        max_retries: RETRY: how many times to run a failing activation again.
        retry_delay: RETRY: seconds before the first retry.
        retry_backoff: RETRY: factor applied to the delay for each further retry (>= 1).
        retryable_exceptions: RETRY: the exception classes worth retrying (all by default).
        is_critical: RETRY: when the retries run out (or the error is not retryable),
            fail the job wherever the routine is.

    Raises:
        ConfigurationError: A setting is out of range (a ``ValueError``).
    """

    def __init__(
        self,
        strategy: ErrorStrategy | str = ErrorStrategy.STOP,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        retry_backoff: float = 2.0,
        retryable_exceptions: tuple[type[BaseException], ...] | None = None,
        is_critical: bool = False,
    ) -> None:
        self.strategy = _strategy(strategy)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            msg = f"max_retries must be an int >= 0, got {max_retries!r}"
            raise ConfigurationError(msg, name="max_retries", value=max_retries)
        if (
            isinstance(retry_delay, bool)
            or not isinstance(retry_delay, (int, float))
            or retry_delay < 0
        ):
            msg = f"retry_delay must be a number of seconds >= 0, got {retry_delay!r}"
            raise ConfigurationError(msg, name="retry_delay", value=retry_delay)
        if (
            isinstance(retry_backoff, bool)
            or not isinstance(retry_backoff, (int, float))
            or retry_backoff < 1
        ):
            msg = f"retry_backoff must be a number >= 1, got {retry_backoff!r}"
            raise ConfigurationError(msg, name="retry_backoff", value=retry_backoff)
        exceptions = tuple(retryable_exceptions) if retryable_exceptions else (Exception,)
        for exc_type in exceptions:
            candidate: object = exc_type
            if not (isinstance(candidate, type) and issubclass(candidate, BaseException)):
                msg = f"retryable_exceptions must hold exception classes, got {exc_type!r}"
                raise ConfigurationError(msg, name="retryable_exceptions", value=exc_type)
        #: RETRY: how many times a failing activation runs again.
        self.max_retries: int = max_retries
        #: RETRY: seconds before the first retry.
        self.retry_delay: float = retry_delay
        #: RETRY: factor applied to the delay for each further retry.
        self.retry_backoff: float = retry_backoff
        #: RETRY: the exception classes that are retried.
        self.retryable_exceptions: tuple[type[BaseException], ...] = exceptions
        #: RETRY: fail the job when the retries run out, wherever the routine is.
        self.is_critical: bool = is_critical
        self._retry_count = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"ErrorHandler(strategy={self.strategy.value!r}, max_retries={self.max_retries}, "
            f"retry_delay={self.retry_delay}, retry_backoff={self.retry_backoff}, "
            f"is_critical={self.is_critical})"
        )

    @property
    def retry_count(self) -> int:
        """
        Retries already scheduled for the activation this handler handled last: 0 when
        the error was not retryable or the strategy is not RETRY, ``max_retries`` once
        they are used up. Read-only for the scheduler's purposes; budgets live in the job.
        """
        return self._retry_count

    @retry_count.setter
    def retry_count(self, value: int) -> None:
        self._mirror(value)

    def _mirror(self, count: int) -> None:
        with self._lock:
            self._retry_count = count

    def reset(self) -> None:
        """
        Set :attr:`retry_count` back to 0.
        """
        self._mirror(0)

    def is_retryable(self, error: BaseException) -> bool:
        """
        Tell whether ``error`` is one of :attr:`retryable_exceptions`.
        """
        return isinstance(error, self.retryable_exceptions)

    def should_retry(self, error: BaseException, retries_made: int | None = None) -> bool:
        """
        Tell whether RETRY applies to ``error`` after ``retries_made`` retries (by default
        :attr:`retry_count`).
        """
        made = self._retry_count if retries_made is None else retries_made
        return (
            self.strategy is ErrorStrategy.RETRY
            and self.is_retryable(error)
            and made < self.max_retries
        )

    def retry_delay_for(self, retries_made: int) -> float:
        """
        The delay before the retry that follows ``retries_made`` earlier retries:
        ``retry_delay * retry_backoff ** retries_made``.
        """
        return float(self.retry_delay * self.retry_backoff**retries_made)

    def handle_error(
        self,
        error: BaseException,
        routine: Routine | None,
        routine_id: str,
        flow: Flow | None,
        context: Any = None,
    ) -> bool:
        """
        Apply the strategy to ``error`` outside the scheduler (for code that calls a handler
        directly) and tell whether execution may go on.

        RETRY counts up :attr:`retry_count` and, when a retry is granted, sleeps
        ``retry_delay * retry_backoff ** (retry_count - 1)`` seconds in the calling thread
        before returning ``True``, as the original did: the back-off of a caller's own retry
        loop. (The scheduler never calls this: it retries on a timer, and no worker sleeps.)
        CONTINUE and SKIP record the error in the current job when there is one.
        """
        from routilux.model._context import current_frame

        frame = current_frame()
        job_state = frame.run.job_state if frame is not None else None
        log = logger.bind(routine_id=routine_id, strategy=self.strategy.value)
        if self.strategy is ErrorStrategy.STOP:
            log.error("routine_failed", error=repr_of(error))
            return False
        if self.strategy is ErrorStrategy.CONTINUE:
            log.warning("routine_error_continued", error=repr_of(error))
            if job_state is not None:
                job_state.record_own(
                    routine_id,
                    "error_continued",
                    {"error": text_of(error), "error_type": type(error).__name__},
                )
            return True
        if self.strategy is ErrorStrategy.SKIP:
            log.warning("routine_skipped", error=repr_of(error))
            if job_state is not None:
                job_state.update_routine_state(
                    routine_id, {"status": "skipped", "error": text_of(error)}
                )
            return True
        if not self.is_retryable(error):
            log.error("routine_error_not_retryable", error=repr_of(error))
            return False
        with self._lock:
            granted = self._retry_count < self.max_retries
            if granted:
                self._retry_count += 1
                made = self._retry_count - 1
        if granted:
            time.sleep(self.retry_delay_for(made))
            return True
        log.error("routine_retries_exhausted", error=repr_of(error))
        return not self.is_critical

    def serialize(self) -> dict[str, Any]:
        """
        Return the handler's settings as data (exception classes by registered name).
        """
        from routilux.codec._error_handlers import dump_error_handler

        return dump_error_handler(self)

    def deserialize(self, data: dict[str, Any]) -> None:
        """
        Restore the settings from :meth:`serialize` output; ``data`` is not changed.
        """
        from routilux.codec._error_handlers import load_error_handler_into

        load_error_handler_into(self, data)
