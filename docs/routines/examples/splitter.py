"""Splitter: one ``item`` event per row of a field, then ``done``."""

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import Splitter


def build_flow():
    split = Splitter()
    split.set_config(field="rows")
    flow = Flow("split")
    flow.add_routine(split, "split")
    return flow


def main():
    flow = build_flow()
    job = flow.execute("split", {"data": {"rows": ["a", "b", "c"]}}, entry_slot="input")
    for record in job.execution_history:
        if isinstance(record, EmitRecord):
            print(record.event_name, record.data)
    flow.shutdown()


if __name__ == "__main__":
    main()
