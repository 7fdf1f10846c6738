"""
HumanInput: ask, pause, answer, resume (same process and after a JobState/Flow round trip).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from routilux import Flow, JobState
from routilux.exceptions import InvalidStateError
from routilux_stdlib import HumanInput

from .conftest import build_flow, received, roundtrip


def ask_flow(strategy: str = "sequential", **config: Any) -> Flow:
    h = HumanInput()
    h.set_config(**config)
    return build_flow(h, "input", events=["output"], strategy=strategy, routine_id="ask")


class TestHumanInput:
    def test_pause_answer_resume(self, strategy: str) -> None:
        """
        The job pauses with the question stored; the answer reaches downstream on resume.
        """
        flow = ask_flow(strategy, question="Approve {amount}?")
        job = flow.execute("entry", {"data": {"amount": 5}})
        assert "paused" == job.status
        waiting = HumanInput.waiting(job)
        assert ["ask"] == list(waiting)
        assert "Approve 5?" == waiting["ask"]["question"]
        assert "waiting for human input" == job.pause_points[-1]["reason"]
        assert [o for o in job.output_log if o.get("output_type") == "human_input"]
        HumanInput.provide_answer(job, "ask", answer="yes", note="ok")
        assert {} == HumanInput.waiting(job)
        flow.resume(job)
        assert job.wait_for_completion(10)
        assert "completed" == job.status
        (out,) = received(flow)["output"]
        assert "yes" == out["answer"]
        assert {"answer": "yes", "note": "ok"} == out["values"]
        assert {"amount": 5} == out["data"]
        flow.shutdown()

    @pytest.mark.parametrize(
        ("values", "answer"),
        [({"answer": 1}, 1), ({"choice": "b"}, "b"), ({"x": 1, "y": 2}, {"x": 1, "y": 2})],
    )
    def test_answer_shape(self, values: dict[str, Any], answer: Any) -> None:
        """
        answer= wins, else the only value, else the dict of values.
        """
        flow = ask_flow()
        job = flow.execute("entry", {"data": "q?", "question": "Pick"})
        HumanInput.provide_answer(job, "ask", **values)
        flow.resume(job)
        assert job.wait_for_completion(10), f"job still {job.status} after the answer"
        (out,) = received(flow)["output"]
        assert (answer, "Pick") == (out["answer"], out["question"])

    def test_resume_without_answer_asks_again(self) -> None:
        """
        Resuming with no answer pauses again with the same question.
        """
        flow = ask_flow(pause_reason="need a human")
        job = flow.execute("entry", {"data": 1})
        flow.resume(job)
        # A paused job is not "completed": wait for the flow to have no running job.
        assert flow.wait_for_completion(10)
        assert "paused" == job.status
        assert 2 == len(job.pause_points)
        assert "need a human" == job.pause_points[-1]["reason"]
        HumanInput.provide_answer(job, "ask", answer="late")
        flow.resume(job)
        assert job.wait_for_completion(10), f"job still {job.status} after the answer"
        assert ["late"] == [p["answer"] for p in received(flow)["output"]]

    def test_resume_after_saving_job_and_flow(self, tmp_path: Any) -> None:
        """
        The question survives JobState.save/load, and a rebuilt flow delivers the answer.
        """
        flow = ask_flow()
        job = flow.execute("entry", {"data": {"id": 3}})
        path = tmp_path / "job.json"
        job.save(path)
        other = roundtrip(flow)
        loaded = JobState.load(path)
        assert ["ask"] == list(HumanInput.waiting(loaded))
        HumanInput.provide_answer(loaded, "ask", answer="approved")
        other.resume(loaded)
        assert loaded.wait_for_completion(10)
        assert "completed" == loaded.status
        assert ["approved"] == [p["answer"] for p in received(other)["output"]]
        assert loaded.serialize() == json.loads(json.dumps(loaded.serialize()))

    def test_provide_answer_errors(self) -> None:
        """
        Answering a routine that asked nothing, or with no value, is an error.
        """
        job = JobState(flow_id="f")
        with pytest.raises(InvalidStateError, match="not waiting"):
            HumanInput.provide_answer(job, "ask", answer=1)
        with pytest.raises(ValueError, match="at least one value"):
            HumanInput.provide_answer(job, "ask")
