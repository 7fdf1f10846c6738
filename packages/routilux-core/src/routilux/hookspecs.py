"""
The hook specifications plugins implement (pluggy project name ``routilux``).

The public path of :mod:`routilux.plugins._hookspecs`.
"""

from __future__ import annotations

from routilux.plugins._hookspecs import (
    PROJECT_NAME,
    hookimpl,
    hookspec,
    routilux_activation_failed,
    routilux_activation_finished,
    routilux_activation_started,
    routilux_event_emitted,
    routilux_job_finished,
    routilux_job_started,
    routilux_job_state_changed,
    routilux_job_status_changed,
    routilux_output_sent,
    routilux_register_plugins,
    routilux_routine_registered,
)


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
