"""Testing one routine: a flow of that routine alone, run with the kit."""

from routilux import Routine
from routilux.testing import assert_emitted, assert_no_errors, assert_outputs, run_flow


class Greet(Routine):
    """Says hello: emits ``greeted`` and sends the greeting as an output."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", self.greet)
        self.define_event("greeted", ["text"])

    def greet(self, name="world", **_):
        self.send_output("greeting", text=f"hello {name}")
        self.emit("greeted", text=f"hello {name}")


def test_greet_says_hello(routilux_flow):
    flow = routilux_flow("greet")  # shut down after the test
    flow.add_routine(Greet(), "greet")
    job = run_flow(flow, "greet", {"name": "ana"})  # fails the test unless it completes
    assert_no_errors(job)
    assert_emitted(job, "greet.greeted", text="hello ana")
    assert_outputs(job, "greet", [{"text": "hello ana"}])
