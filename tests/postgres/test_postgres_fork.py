"""
The checkpoint log of the PostgreSQL store: time travel and fork, as in the SQLite store
(tests/core/test_checkpoint_log.py): a fork copies the rows of its origin's checkpoint
without decoding them, starts its own log at the checkpoint after it, and resumes like
the original.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from helpers import run_job_within
from scaleout_routines import chain_flow


pytest.importorskip("routilux_postgres", reason="routilux-postgres is not installed")

from routilux.exceptions import JobNotFoundError
from routilux.store import create_job
from routilux_postgres import PostgresJobStore


@pytest.fixture
def store(clean_db: str) -> Any:
    s = PostgresJobStore(clean_db, keep_checkpoints=None)
    yield s
    s.close()


def test_fork_time_travel_and_resume(store: PostgresJobStore) -> None:
    """Every kept checkpoint loads; a fork at one of them lists only its own checkpoints
    and, resumed, ends with the original's data plus what the fork set."""
    job_id = create_job(
        store, chain_flow(), "step", {"n": 0, "steps": 6}, options={"checkpoint_every": 1}
    )
    assert "completed" == run_job_within(job_id, store).status
    original = store.load_job(job_id)
    seqs = [c.seq for c in store.checkpoints(job_id)]
    assert seqs == list(range(1, original.checkpoint_seq + 1))
    trails = [store.load_checkpoint(job_id, s)["shared_data"].get("trail") for s in seqs]
    assert all(len(a or []) <= len(b or []) for a, b in itertools.pairwise(trails))
    assert original.state is not None and original.state["shared_data"]["trail"] == trails[-1]
    at = seqs[len(seqs) // 2]
    fork = store.fork(job_id, at=at, new_job_id="f", shared_data={"note": "x"})
    assert ("paused", {"job_id": job_id, "seq": at}) == (fork.status, fork.forked_from)
    assert fork.state == store.load_checkpoint("f", at + 1) == store.load_job("f").state
    assert [at + 1] == [c.seq for c in store.checkpoints("f")]
    with pytest.raises(JobNotFoundError, match=f"no checkpoint {at} of job 'f'"):
        store.load_checkpoint("f", at)
    assert "completed" == run_job_within("f", store).status
    finished = store.load_job("f").state
    assert finished is not None
    assert {**original.state["shared_data"], "note": "x"} == finished["shared_data"]
    assert original.state == store.load_job(job_id).state
