"""DataFlattener: nested dicts and lists become one level of dotted keys."""

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import DataFlattener


def build_flow():
    flow = Flow("flatten")
    flow.add_routine(DataFlattener(), "flatten")
    return flow


def main():
    flow = build_flow()
    data = {"user": {"name": "ada", "tags": ["x", "y"]}}
    job = flow.execute("flatten", {"data": data}, entry_slot="input")
    (record,) = [r for r in job.execution_history if isinstance(r, EmitRecord)]
    print(record.data["flattened_data"])
    flow.shutdown()


if __name__ == "__main__":
    main()
