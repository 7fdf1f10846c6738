"""Filter: keep the scores of at least 0.5; the others go to ``rejected``."""

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import Filter


def build_flow():
    keep = Filter()
    keep.set_config(condition="data.get('score', 0) >= 0.5")
    flow = Flow("scores")
    flow.add_routine(keep, "keep")
    return flow


def main():
    flow = build_flow()
    scores = [{"score": 0.9}, {"score": 0.1}, {}]
    job = flow.execute("keep", {"data": scores}, entry_slot="input")
    for record in job.execution_history:
        if isinstance(record, EmitRecord):
            print(record.event_name, record.data["data"])
    flow.shutdown()


if __name__ == "__main__":
    main()
