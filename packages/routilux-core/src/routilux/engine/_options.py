"""
The options of a job's run: :class:`RunOptions`, and the keyword arguments that carry them.

``Flow.execute``, ``submit`` and ``aexecute`` take every option as a keyword argument
(:class:`RunKwargs`), ``Flow.resume`` and ``retry`` the checkpoint and control ones
(:class:`ReopenKwargs`); each builds one :class:`RunOptions` and hands it on. An option is
added here only: a field of :class:`RunOptions` (with its documentation, which the
docstrings of those methods list) and a key of the keyword-argument type.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypedDict, TypeVar

import attrs

from routilux.model._slot import check_timeout


if TYPE_CHECKING:
    from routilux.engine._control import JobControl
    from routilux.model._job_state import JobState
    from routilux.model._output import OutputHandler
    from routilux.model._stream_event import StreamEvent

__all__ = ["REOPEN_OPTIONS", "RUN_OPTIONS", "ReopenKwargs", "RunKwargs", "RunOptions", "documented"]

_F = TypeVar("_F", bound=Callable[..., Any])


class ReopenKwargs(TypedDict, total=False):
    """
    The options of ``Flow.resume`` and ``Flow.retry`` as keyword arguments (see
    :class:`RunOptions`).
    """

    checkpoint: Callable[[JobState, dict[str, Any]], bool | None] | None
    checkpoint_deltas: bool
    checkpoint_every: int
    checkpoint_interval: float
    control: JobControl | None
    deadline: float | None
    on_event: Callable[[StreamEvent], None] | None


class RunKwargs(ReopenKwargs, total=False):
    """
    The options of ``Flow.execute``, ``submit`` and ``aexecute`` as keyword arguments (see
    :class:`RunOptions`).
    """

    job_state: JobState | None
    output_handler: OutputHandler | None
    entry_slot: str | None


def _about(doc: str, *, reopen: bool = False) -> dict[str, Any]:
    # The metadata of a field of RunOptions: its documentation, and whether resume and
    # retry take it.
    return {"doc": doc, "reopen": reopen}


def _check_deadline(value: Any) -> float | None:
    # A deadline: seconds > 0, or None.
    return check_timeout(value, "deadline", "deadline")


@attrs.frozen(kw_only=True)
class RunOptions:
    """
    The options of one run of a job. Each field but ``execution_strategy`` (a positional
    argument of its own) is a keyword argument of ``Flow.execute``, ``submit`` and
    ``aexecute``; the checkpoint and control ones also of ``Flow.resume`` and ``retry``.
    """

    execution_strategy: str | None = attrs.field(
        default=None, metadata=_about("The strategy of this job only (the flow's by default).")
    )
    job_state: JobState | None = attrs.field(
        default=None,
        metadata=_about(
            "A JobState to run the job in (for example with shared data or an output handler "
            "set up beforehand); a new one by default."
        ),
    )
    output_handler: OutputHandler | None = attrs.field(
        default=None, metadata=_about("Where the job's ``send_output`` calls go.")
    )
    checkpoint: Callable[[JobState, dict[str, Any]], bool | None] | None = attrs.field(
        default=None,
        metadata=_about(
            "Called as ``checkpoint(job_state, snapshot)`` with the serialized job (queued "
            "activations included as pending tasks) after every ``checkpoint_every`` "
            "activations and when the job pauses, finishes, fails or is cancelled; for job "
            "stores. It may return ``False`` to say it wrote nothing (the snapshot is older "
            "than the one it holds). For resume and retry, when given, it replaces the "
            "job's own.",
            reopen=True,
        ),
    )
    checkpoint_deltas: bool = attrs.field(
        default=False,
        metadata=_about(
            "Hand ``checkpoint`` the run's first snapshot whole and each later one as what "
            "changed since the last one it accepted (a ``routilux.job_state_delta`` "
            "document: see :func:`routilux.serialization.apply_delta`), so that a "
            "checkpoint costs what changed; after a ``False`` or an error, the next "
            "snapshot is whole again.",
            reopen=True,
        ),
    )
    checkpoint_every: int = attrs.field(
        default=0,
        metadata=_about("Activations between checkpoints (0: only at those points).", reopen=True),
    )
    checkpoint_interval: float = attrs.field(
        default=0.0,
        metadata=_about(
            "Also checkpoint at the first activation boundary once this many seconds passed "
            "since the last checkpoint (0: never), so that a crash re-runs about that much "
            "work at most.",
            reopen=True,
        ),
    )
    control: JobControl | None = attrs.field(
        default=None,
        metadata=_about(
            'Polled before each activation for remote ``"pause"``/``"cancel"``. For resume '
            "and retry, when given, it replaces the job's own.",
            reopen=True,
        ),
    )
    deadline: float | None = attrs.field(
        default=None,
        converter=_check_deadline,
        metadata=_about(
            "Seconds from this call after which the job fails with "
            ":class:`~routilux.exceptions.JobDeadlineExceeded` (its queued and waiting work "
            "kept in its failed tasks, for ``retry``); ``None``: none. A sync handler "
            "still running then is not stopped (see ``docs/timeouts.md``).",
            reopen=True,
        ),
    )
    on_event: Callable[[StreamEvent], None] | None = attrs.field(
        default=None,
        metadata=_about(
            "Called with each :class:`~routilux.StreamEvent` of the job as it happens, on "
            "the thread where it happens, sometimes with the job's lock held: it must be "
            "quick and must not wait for the job (``Flow.stream`` is the iterator over "
            "them). For resume and retry, when given, it replaces the job's own.",
            reopen=True,
        ),
    )
    entry_slot: str | None = attrs.field(
        default=None,
        metadata=_about(
            "The slot of the entry routine that receives ``entry_params``; by default its "
            "``trigger`` slot, else its ``input`` slot (the built-in routines' entry), else "
            "its only slot (see :func:`~routilux.flow.default_entry_slot`)."
        ),
    )

    @classmethod
    def of(
        cls,
        method: str,
        options: Mapping[str, Any],
        *,
        reopen: bool = False,
        execution_strategy: str | None = None,
    ) -> RunOptions:
        """
        Return the options ``method`` was called with (``options``: its keyword arguments).

        Raises:
            TypeError: ``options`` holds a name ``method`` does not take, as Python says it.
        """
        if not options and execution_strategy is None:
            return _DEFAULTS  # most calls: made once, not per job
        allowed = REOPEN_OPTIONS if reopen else RUN_OPTIONS
        for name in options:
            if name not in allowed:
                msg = f"{method}() got an unexpected keyword argument {name!r}"
                raise TypeError(msg)
        return cls(execution_strategy=execution_strategy, **options)


_DEFAULTS: Final = RunOptions()


RUN_OPTIONS: Final = frozenset(attrs.fields_dict(RunOptions)) - {"execution_strategy"}
"""The keyword arguments of ``Flow.execute``, ``submit`` and ``aexecute`` (:class:`RunKwargs`)."""

REOPEN_OPTIONS: Final = frozenset(f.name for f in attrs.fields(RunOptions) if f.metadata["reopen"])
"""The keyword arguments of ``Flow.resume`` and ``retry`` (:class:`ReopenKwargs`)."""


def documented(*, reopen: bool = False) -> Callable[[_F], _F]:
    """
    Return a decorator that replaces the line ``{options}`` of a method's docstring (in
    its ``Args:`` section) by one entry per option it takes, from :class:`RunOptions`.
    """
    names = REOPEN_OPTIONS if reopen else RUN_OPTIONS
    fields = [f for f in attrs.fields(RunOptions) if f.name in names]

    def decorate(func: _F) -> _F:
        lines = []
        for line in (func.__doc__ or "").splitlines():
            if line.strip() != "{options}":
                lines.append(line)
                continue
            indent = line[: len(line) - len(line.lstrip())]
            for f in fields:
                text = textwrap.wrap(
                    f"{f.name}: {f.metadata['doc']}",
                    width=88,
                    initial_indent=indent,
                    subsequent_indent=indent + "    ",
                )
                lines.extend(text)
        func.__doc__ = "\n".join(lines)
        return func

    return decorate
