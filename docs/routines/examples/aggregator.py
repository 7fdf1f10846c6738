"""Aggregator: wait until the weather and the news have both answered, then emit both."""

from routilux import Flow, Routine
from routilux.history import EmitRecord
from routilux_stdlib import Aggregator


class Fetch(Routine):
    """Sends the reading of its source: its config's ``value``."""

    def __init__(self):
        super().__init__()
        self.set_config(value=None)
        self.define_slot("trigger", self.fetch)
        self.define_event("out", ["data"])

    def fetch(self, **_):
        self.emit("out", data=self.get_config("value"))


class Start(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", lambda **_: self.emit("go"))
        self.define_event("go")


def build_flow():
    flow = Flow("morning-brief")
    flow.add_routine(Start(), "start")
    for name, value in (("weather", "sunny"), ("news", "a quiet day")):
        fetch = Fetch()
        fetch.set_config(value=value)
        flow.add_routine(fetch, name)
        flow.connect("start", "go", name, "trigger")
    flow.add_routine(Aggregator(), "gather")  # expects every routine connected to its input
    flow.connect("weather", "out", "gather", "input")
    flow.connect("news", "out", "gather", "input")
    return flow


def main():
    flow = build_flow()
    job = flow.execute("start")
    for record in job.execution_history:
        if isinstance(record, EmitRecord) and record.routine_id == "gather":
            print(record.data["by_source"], record.data["reason"])
    flow.shutdown()


if __name__ == "__main__":
    main()
