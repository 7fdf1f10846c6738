"""
What every route of the page shares: the store, its index, inbox, actions and templates.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote

import attrs
import jinja2

from routilux.exceptions import JobStoreError
from routilux.store import JobStore

from ._actions import Actions, offered_actions
from ._inbox import Inbox
from ._job_listing import JobIndex
from ._views import ROUTINE_STATES, fmt_time, job_detail, preview


__all__ = ["UiContext", "make_templates"]


def _id_url(value: str) -> str:
    # A job or routine id as one path segment (a "/" in it stays inside the segment).
    return quote(value, safe="")


def make_templates() -> jinja2.Environment:
    """
    Return the Jinja2 environment of the page's templates: every value is escaped.
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("routilux_ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["id_url"] = _id_url
    env.filters["time"] = fmt_time
    env.filters["preview"] = preview
    env.globals["ROUTINE_STATES"] = ROUTINE_STATES
    return env


@attrs.define
class UiContext:
    """
    The state of one page application.
    """

    store: JobStore
    index: JobIndex
    inbox: Inbox
    actions: Actions
    templates: jinja2.Environment
    read_only: bool
    csrf_token: str
    #: Seconds between two reads of the store for live updates.
    poll_interval: float
    #: The store as ``--store`` named it (shown in the header).
    store_label: str
    #: Set when the server stops: the event streams end at once instead of being cut.
    closing: threading.Event = attrs.field(factory=threading.Event)

    def detail(self, job_id: str) -> dict[str, Any]:
        """
        Return the detail of a job (see :func:`~routilux_ui._views.job_detail`).

        Raises:
            JobNotFoundError: No such job (or its flow version is gone).
            JobStoreError: The job cannot be read.
        """
        record = self.store.load_job(job_id)
        note = self.actions.failures.get(job_id)
        try:
            flow_data = self.store.load_flow(record.flow_id, record.fingerprint)
        except JobStoreError as exc:
            flow_data = {"flow_id": record.flow_id, "routines": {}, "connections": []}
            note = f"the job's flow cannot be read: {exc}"
        offered = offered_actions(record, read_only=self.read_only)
        if self.actions.running_here(job_id):
            offered["resume"] = False
        return job_detail(record, flow_data, offered, note)
