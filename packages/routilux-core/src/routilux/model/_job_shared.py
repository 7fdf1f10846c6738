"""
The data a job's routines share: shared data, the shared log, metadata, and outputs.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from routilux._util._clock import iso_now
from routilux._util._log import bind, repr_of, text_of
from routilux.exceptions import RoutiluxWarning
from routilux.model._job_changes import ChangeKind
from routilux.model._job_containers import JobContainers


if TYPE_CHECKING:
    from routilux.model._output import OutputHandler


__all__ = ["JobShared"]


class JobShared(JobContainers):
    """
    The part of a JobState that its routines share: :attr:`shared_data`, :attr:`shared_log`,
    :attr:`metadata` and the outputs (:attr:`output_log`, the output handler).
    """

    __slots__ = ()

    # The job's attributes this part writes, declared as properties for type checkers
    # (JobState's slots; a part has none).
    if TYPE_CHECKING:

        @property
        def _shared_data(self) -> dict[str, Any] | None: ...

        @_shared_data.setter
        def _shared_data(self, value: dict[str, Any] | None) -> None: ...

        @property
        def _shared_log(self) -> list[dict[str, Any]] | None: ...

        @_shared_log.setter
        def _shared_log(self, value: list[dict[str, Any]] | None) -> None: ...

        @property
        def output_handler(self) -> OutputHandler | None: ...

        @output_handler.setter
        def output_handler(self, value: OutputHandler | None) -> None: ...

        @property
        def output_handler_failures(self) -> int: ...

        @output_handler_failures.setter
        def output_handler_failures(self, value: int) -> None: ...

    def update_shared_data(self, key: str, value: Any) -> None:
        """
        Set ``shared_data[key] = value``.
        """
        with self._lock:
            data = self._shared_data
            if data is None:
                data = self._shared_data = {}
            if self._on_change is None:
                data[key] = value
            else:
                old = data.get(key)
                data[key] = value
                self._changed(ChangeKind.SHARED_DATA, key, old, value, None)
            self._updated_at = time.time()

    def get_shared_data(self, key: str, default: Any = None) -> Any:
        """
        Return ``shared_data[key]``, or ``default``.
        """
        with self._lock:
            return self.shared_data.get(key, default)

    def modify_shared_data(self, key: str, func: Callable[[Any], Any], default: Any = None) -> Any:
        """
        Replace ``shared_data[key]`` by ``func(current value or default)`` atomically, so
        read-modify-write updates from concurrent routines are never lost. Returns the new value.

        .. versionadded:: 0.10
        """
        with self._lock:
            old = self.shared_data.get(key, default)
            new = func(old)
            self.shared_data[key] = new
            self._updated_at = time.time()
            self._changed(ChangeKind.SHARED_DATA, key, old, new, None)
            return new

    def append_to_shared_log(self, entry: dict[str, Any]) -> None:
        """
        Append ``entry`` to the shared log, stamping a copy with the time if it has none.

        Raises:
            ValueError: ``entry`` is not a dict.
        """
        checked: object = entry
        if not isinstance(checked, dict):
            from routilux.exceptions import ConfigurationError

            msg = "Entry must be a dictionary"
            raise ConfigurationError(msg, name="entry", value=entry)
        if "timestamp" not in entry:
            entry = {**entry, "timestamp": iso_now()}
        with self._lock:
            log = self._shared_log
            if log is None:
                log = self._shared_log = []
            log.append(entry)
            self._updated_at = time.time()
            if self._on_change is not None:
                self._changed(ChangeKind.SHARED_LOG, None, None, entry, None)

    def get_shared_log(
        self, filter_func: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[dict[str, Any]]:
        """
        Return a copy of the shared log, or of the entries ``filter_func`` accepts.
        """
        with self._lock:
            entries = list(self.shared_log)
        if filter_func is None:
            return entries
        return [e for e in entries if filter_func(e)]

    def set_metadata(self, key: str, value: Any) -> None:
        """
        Set ``metadata[key] = value``.

        .. versionadded:: 0.10
        """
        with self._lock:
            old = self.metadata.get(key)
            self.metadata[key] = value
            self._updated_at = time.time()
            self._changed(ChangeKind.METADATA, key, old, value, None)

    def set_output_handler(self, handler: OutputHandler | None) -> None:
        """
        Forward every ``send_output`` to ``handler`` (``None`` stops forwarding).
        """
        self.output_handler = handler

    def send_output(self, routine_id: str, output_type: str, data: dict[str, Any]) -> None:
        """
        Log an output in :attr:`output_log`, then forward it to the output handler, if any.

        A handler that raises never fails the job, whatever the warnings filter says: the
        output is in :attr:`output_log` already, the failure is logged through structlog
        and counted in :attr:`output_handler_failures`, and a
        :class:`~routilux.exceptions.RoutiluxWarning` is issued (with a warnings filter of
        ``"error"`` it is not raised into the job).
        """
        ts = datetime.now()
        entry = {
            "routine_id": routine_id,
            "output_type": output_type,
            "data": data,
            "timestamp": ts.isoformat(),
        }
        with self._lock:
            self.output_log.append(entry)
            self.updated_at = ts
            self._changed(ChangeKind.OUTPUT, output_type, None, entry, routine_id)
        handler = self.output_handler
        if handler is None:
            return
        try:
            handler.handle(
                job_id=self.job_id,
                routine_id=routine_id,
                output_type=output_type,
                data=data,
                timestamp=ts,
            )
        except Exception as exc:  # noqa: BLE001 - a broken handler must not stop the job
            with self._lock:
                self.output_handler_failures += 1
            log = bind(flow_id=self.flow_id, job_id=self.job_id, routine_id=routine_id)
            log.warning("output_handler_failed", handler=type(handler).__name__, error=repr_of(exc))
            msg = f"Output handler failed: {text_of(exc)}"
            # A filter of "error" raises it here: it is logged and counted already.
            with contextlib.suppress(Warning):
                warnings.warn(msg, RoutiluxWarning, stacklevel=3)
