"""HumanInput: ask a person, pause the job, and go on with the answer once it is given."""

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import ConditionalRouter, HumanInput


def build_flow():
    ask = HumanInput()
    ask.set_config(question="Approve a refund of {amount} EUR? yes/no")
    decide = ConditionalRouter()
    decide.add_route("approved", "data == 'yes'")
    decide.set_config(default_route="refused")
    flow = Flow("refund")
    flow.add_routine(ask, "approve")
    flow.add_routine(decide, "decide")
    flow.connect("approve", "output", "decide", "input", {"answer": "data"})
    return flow


def main():
    flow = build_flow()
    job = flow.execute("approve", {"data": {"amount": 30}}, entry_slot="input")
    print(job.status, "-", HumanInput.waiting(job)["approve"]["question"])
    HumanInput.provide_answer(job, "approve", answer="yes")
    flow.resume(job)
    job.wait_for_completion(timeout=10)
    routes = [r.event_name for r in job.execution_history if isinstance(r, EmitRecord)]
    print(job.status, "- decide emitted", routes[-1])
    flow.shutdown()


if __name__ == "__main__":
    main()
