"""Batcher: five items in batches of two; the Splitter's ``done`` flushes the last one."""

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import Batcher, Splitter


def build_flow():
    flow = Flow("batches")
    flow.add_routine(Splitter(), "split")
    batcher = Batcher()
    batcher.set_config(batch_size=2)
    flow.add_routine(batcher, "batch")
    flow.connect("split", "item", "batch", "input")
    flow.connect("split", "done", "batch", "flush")  # flush the rest when the input ends
    return flow


def main():
    flow = build_flow()
    job = flow.execute("split", {"data": [1, 2, 3, 4, 5]}, entry_slot="input")
    for record in job.execution_history:
        if isinstance(record, EmitRecord) and record.routine_id == "batch":
            print(record.data)
    flow.shutdown()


if __name__ == "__main__":
    main()
