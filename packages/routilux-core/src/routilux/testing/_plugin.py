"""
The pytest plugin of routilux (entry point ``pytest11``): fixtures for testing routines and
flows. It is inert until a test asks for one of its fixtures: loading it imports pytest
(which is running anyway) and no part of routilux.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest


if TYPE_CHECKING:
    from routilux.engine._flow import Flow
    from routilux.persist._sqlite import SqliteJobStore
    from routilux.testing._clock import FakeClock
    from routilux.testing._events import RecordedEvents


@pytest.fixture
def routilux_store(tmp_path: Path) -> Iterator[SqliteJobStore]:
    """
    A throwaway SQLite job store in the test's temporary folder, closed after the test.
    """
    from routilux.persist._sqlite import SqliteJobStore

    store = SqliteJobStore(tmp_path / "routilux-jobs.db")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def routilux_clock() -> Iterator[FakeClock]:
    """
    A fake clock (:class:`routilux.testing.FakeClock`) installed for the test: the retry
    back-offs, slot timeouts and job deadlines armed during the test (by any flow) wait on
    it, and ``routilux_clock.advance(seconds)`` runs those that fall due, on the
    test's thread. Real time never passes for them.
    """
    from routilux.testing._clock import FakeClock

    with FakeClock().installed() as clock:
        yield clock


@pytest.fixture
def routilux_events() -> Iterator[RecordedEvents]:
    """
    Every stream event of the jobs the test starts (a :class:`RecordedEvents`: filter them
    with ``filter(kind, job_id=, routine_id=, **data)``, list ``kinds(job_id)``, wait for
    one with ``wait_for(...)``). Jobs of flows given their own plugin manager are not seen.
    """
    from routilux.testing._events import RecordedEvents

    events = RecordedEvents()
    events.start()
    try:
        yield events
    finally:
        events.stop()


@pytest.fixture
def routilux_flow() -> Iterator[Callable[..., Flow]]:
    """
    A factory of flows that are shut down after the test: ``routilux_flow(flow_id, ...)``
    takes the arguments of ``Flow``, or ``routilux_flow(document=...)`` rebuilds a flow
    from its serialized form (a dict, or a flow file's path). The test fails when a job of
    one of them still runs at its end (a test must wait for what it starts).
    """
    from routilux.engine._flow import Flow

    made: list[Flow] = []

    def make(*args: Any, document: Any = None, **kwargs: Any) -> Flow:
        flow = _from_document(document) if document is not None else Flow(*args, **kwargs)
        made.append(flow)
        return flow

    yield make
    running = [flow for flow in made if not flow.wait_for_completion(0)]
    for flow in made:
        flow.shutdown(wait=False)
    if running:
        names = ", ".join(repr(flow) for flow in running)
        pytest.fail(f"a job of {names} was still running at the end of the test")


def _from_document(document: Any) -> Flow:
    from routilux.engine._flow import Flow
    from routilux.persist._flowfile import load_flow_file

    if isinstance(document, (str, Path)):
        return load_flow_file(document)
    flow = Flow()
    flow.deserialize(dict(document))
    return flow
