"""
The README's quick start, runnable: squares of the first numbers, computed concurrently.
"""

from __future__ import annotations

from typing import Any

from routilux import Flow, Routine


class Numbers(Routine):
    """Emits ``count`` numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("number", ["value"])

    def start(self, count: int = 3, **_: Any) -> None:
        for i in range(count):
            self.emit("number", value=i)


class Square(Routine):
    """Logs the square of each number in the job's shared log."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.square)

    def square(self, value: int = 0, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.append_to_shared_log({"square": value * value})


def main() -> None:
    with Flow(flow_id="squares", execution_strategy="concurrent", max_workers=4) as flow:
        flow.add_routine(Numbers(), "numbers")
        flow.add_routine(Square(), "square")
        flow.connect("numbers", "number", "square", "input")
        job = flow.execute("numbers", entry_params={"count": 4})
        print(job.status)
        print(sorted(e["square"] for e in job.shared_log))


if __name__ == "__main__":
    main()
