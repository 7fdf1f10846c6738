"""TimeProvider: the current time in UTC, as ISO text and as a timestamp."""

from datetime import datetime

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import TimeProvider


def build_flow():
    clock = TimeProvider()
    clock.set_config(timezone="UTC")
    flow = Flow("clock")
    flow.add_routine(clock, "clock")
    return flow


def main():
    flow = build_flow()
    job = flow.execute("clock", entry_slot="request")
    (record,) = [r for r in job.execution_history if isinstance(r, EmitRecord)]
    now = datetime.fromisoformat(record.data["datetime"])
    print(sorted(record.data))
    print("UTC offset:", now.utcoffset(), "- timestamp:", type(record.data["timestamp"]).__name__)
    flow.shutdown()


if __name__ == "__main__":
    main()
