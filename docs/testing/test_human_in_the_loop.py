"""Testing a flow that asks a person: the answers are given in the test."""

from pathlib import Path

from routilux.testing import assert_emitted, run_flow
from routilux_stdlib import HumanInput


# The repository's approval example: a HumanInput routine asks, a router decides.
APPROVAL = Path(__file__).resolve().parents[2] / "examples" / "approval" / "flow.json"
CLAIM = {"amount": 40, "employee": "bo", "reason": "lunch"}


def test_an_approved_claim(routilux_flow):
    flow = routilux_flow(document=APPROVAL)
    job = run_flow(flow, "ask", CLAIM, answers={"ask": {"answer": "yes"}})
    assert_emitted(job, "decide.approved", data="yes")


def test_the_question_waits_for_an_answer(routilux_flow):
    flow = routilux_flow(document=APPROVAL)
    job = flow.execute("ask", CLAIM)
    assert job.status == "paused"  # waiting for the person
    HumanInput.provide_answer(job, "ask", answer="no")  # as the web page or the CLI does
    flow.resume(job)
    assert job.wait_for_completion(10), f"the job is still {job.status}"
    assert_emitted(job, "decide.rejected", data="no")
