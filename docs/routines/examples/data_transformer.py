"""DataTransformer: a chain of named transformations; an unknown one is reported, not raised."""

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import DataTransformer


def build_flow():
    transform = DataTransformer()
    transform.set_config(transformations=["strip", "uppercase", "nope"])
    flow = Flow("transform")
    flow.add_routine(transform, "transform")
    return flow


def main():
    flow = build_flow()
    job = flow.execute("transform", {"data": "  hello "}, entry_slot="input")
    (record,) = [r for r in job.execution_history if isinstance(r, EmitRecord)]
    print(repr(record.data["transformed_data"]), record.data["errors"])
    flow.shutdown()


if __name__ == "__main__":
    main()
