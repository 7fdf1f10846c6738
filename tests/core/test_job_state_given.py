"""
What is given to a JobState: the routine states handed to its constructor, the files it
loads, a document loaded into a job someone waits for.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import chain, within

from routilux import Flow, JobState
from routilux.exceptions import DeserializationError


def test_routine_states_given_stay_the_callers_dict_once_the_job_finished() -> None:
    """The dict of routine states given to JobState() is the job's own for good: the run
    writes into it, and it is still the job's after the job finished."""
    states: dict[str, dict[str, int]] = {"note": {"seen": 1}}
    js = JobState("given", routine_states=states)
    flow = Flow("given", "sequential")
    chain(flow, 1)
    try:
        within(10, "execute to return", flow.execute, "e", {"value": 1}, job_state=js)
    finally:
        flow.shutdown(wait=True, timeout=3)
    assert "completed" == js.status
    assert js.routine_states is states
    assert "completed" == states["r0"]["status"]
    assert {"seen": 1} == states["note"]


def test_load_of_a_missing_file_names_it(tmp_path: Path) -> None:
    """JobState.load of a path with no file raises FileNotFoundError naming the path."""
    path = tmp_path / "nowhere" / "job.json"
    with pytest.raises(FileNotFoundError, match=r"JobState file not found: .*job\.json"):
        JobState.load(path)


def test_load_of_a_file_that_is_not_json_says_so(tmp_path: Path) -> None:
    """JobState.load of a file that is not JSON raises DeserializationError naming the
    file, and keeps the JSON error as its cause."""
    path = tmp_path / "job.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DeserializationError, match=r"job\.json is not valid JSON") as info:
        JobState.load(path)
    assert info.value.__cause__ is not None


class _SettledRun:
    """What a finished, settled run leaves (see ``RunState``), telling when a waiter has
    looked at it (it then waits on the job's condition, having found the job not final)."""

    def __init__(self) -> None:
        self.looked = threading.Event()
        self.abandoned = False
        self.in_flight = 0

    @property
    def finished(self) -> bool:
        self.looked.set()
        return True

    def is_settled(self) -> bool:
        return True

    def written_states(self) -> None:
        return None


def test_loading_a_finished_document_wakes_whoever_waits_for_the_job() -> None:
    """A thread waiting in wait_for_completion() for a job wakes, with True, when the
    document of a completed job is loaded into it (deserialize replaces the job's state)."""
    done = JobState("f")
    done.record_execution("a", "out", {"i": 1})
    done.status = "completed"
    document = done.serialize()

    job = JobState("f")
    run = _SettledRun()
    job.attach_run(run)
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(job.wait_for_completion()))
    waiter.daemon = True
    waiter.start()
    assert run.looked.wait(10), "the waiter never looked at the job"
    # The waiter holds the job's lock from its look until it waits on the condition, so
    # the load (which takes the lock) comes after it waits.
    within(10, "deserialize to return", job.deserialize, document)
    waiter.join(10)
    assert not waiter.is_alive(), "the waiter was not woken by the load"
    assert [True] == outcome
    assert "completed" == job.status
