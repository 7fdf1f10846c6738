"""
The hook specifications plugins implement (pluggy project name ``routilux``).

A plugin is any object or module with functions named like these specs and marked with
:data:`routilux.hookimpl`. It may take any subset of a spec's arguments. Register it with
:func:`routilux.register_plugin`, per flow with ``Flow(plugins=...)``, or install a package
that declares it in the ``routilux`` entry-point group.

Hooks are called on the thread where the event happens, sometimes with the job's lock
held: a hook must be quick and must not wait for the job. A hook that raises is logged,
counted and skipped; it never changes the job's outcome.

:func:`routilux_register_plugins` is a registration hook: it is called once, when the
plugin that implements it is registered (an entry-point module is registered when the first
job of the process starts), and never on a job's hot path. An entry-point module should
implement only this hook and return the plugins its configuration enables, so that having a
package installed costs nothing until it is configured.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy


if TYPE_CHECKING:
    from routilux.model._definition import FlowDefinition as Flow
    from routilux.model._job_state import JobState, JobStateChange
    from routilux.model._routine import Routine

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "routilux_activation_failed",
    "routilux_activation_finished",
    "routilux_activation_started",
    "routilux_event_emitted",
    "routilux_job_finished",
    "routilux_job_started",
    "routilux_job_state_changed",
    "routilux_job_status_changed",
    "routilux_output_sent",
    "routilux_register_plugins",
    "routilux_routine_registered",
]

PROJECT_NAME = "routilux"
"""The pluggy project name, and the entry-point group plugins are found in."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks hook specifications (used by this module)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's hook implementations."""


@hookspec
def routilux_job_started(flow: Flow, job_state: JobState) -> None:
    """
    A job started (``execute`` or ``submit``), before its entry routine runs.
    """


@hookspec
def routilux_job_status_changed(flow: Flow, job_state: JobState, old: str, new: str) -> None:
    """
    The job's status changed from ``old`` to ``new``.
    """


@hookspec
def routilux_job_finished(flow: Flow, job_state: JobState) -> None:
    """
    The job reached a final status (completed, failed or cancelled).
    """


@hookspec
def routilux_activation_started(
    flow: Flow, job_state: JobState, routine_id: str | None, slot_name: str, attempt: int
) -> None:
    """
    A slot handler is about to run; ``attempt`` is 1 for the first run, 2 for the first retry...
    """


@hookspec
def routilux_activation_finished(
    flow: Flow, job_state: JobState, routine_id: str | None, slot_name: str, duration: float
) -> None:
    """
    A slot handler returned; ``duration`` is in seconds.
    """


@hookspec
def routilux_activation_failed(
    flow: Flow,
    job_state: JobState,
    routine_id: str | None,
    slot_name: str,
    error: BaseException,
    strategy: str,
) -> None:
    """
    A slot handler raised ``error``; ``strategy`` is what the job did about it:
    ``"stop"``, ``"continue"``, ``"retry"`` or ``"skip"``. For an ``async def`` handler
    interrupted by the job's pause or cancel, ``error`` is the ``CancelledError`` and
    ``strategy`` is ``"requeue"`` (it runs again on resume) or ``"cancel"``.
    """


@hookspec
def routilux_event_emitted(
    flow: Flow, job_state: JobState, routine_id: str | None, event_name: str, data: dict[str, Any]
) -> None:
    """
    A routine of the job emitted an event.
    """


@hookspec
def routilux_output_sent(
    flow: Flow, job_state: JobState, routine_id: str | None, output_type: str, data: dict[str, Any]
) -> None:
    """
    A routine of the job called ``send_output``.
    """


@hookspec
def routilux_job_state_changed(flow: Flow, job_state: JobState, change: JobStateChange) -> None:
    """
    Something in the JobState changed; replaying the changes rebuilds the state.
    """


@hookspec
def routilux_register_plugins() -> Iterable[object] | None:
    """
    Return more plugins to register beside the one implementing this hook (or ``None``).

    Called once per plugin manager, when the implementing plugin is registered. This is how
    an installed package contributes plugins only when its configuration asks for them.
    """


@hookspec
def routilux_routine_registered(name: str, routine_class: type[Routine]) -> None:
    """
    A routine class was registered under ``name`` in the routine registry.
    """
