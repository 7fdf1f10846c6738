"""
Routines and flows of the scale-out tests (tests/postgres, tests/dask), registered by name so
that ``routilux worker`` subprocesses and Dask workers rebuild them (they import this module:
``--import scaleout_routines`` with the tests folder on PYTHONPATH).
"""

from __future__ import annotations

import os
import time
from typing import Any

from routilux import Flow, Routine
from routilux.registry import is_registered, register_routine


class Step(Routine):
    """
    One step of a counting chain: notes its idempotency key in the side-effect log (config
    ``log``), works ``delay`` seconds, adds ``n * seed`` to the shared ``trail`` and emits
    ``n + 1`` to itself until ``n`` reaches ``steps``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.step)
        self.define_event("next", ["n", "steps", "seed"])

    def step(self, n: int = 0, steps: int = 5, seed: int = 1, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        log = self.get_config("log")
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{ctx.idempotency_key} {os.getpid()}\n")
        delay = float(self.get_config("delay", 0.0))
        if delay:
            time.sleep(delay)  # the work of one activation
        ctx.job_state.modify_shared_data("trail", lambda t: [*(t or []), n * seed], None)
        if n < steps:
            self.emit("next", n=n + 1, steps=steps, seed=seed)


if not is_registered("scaleout.Step"):
    register_routine(Step, name="scaleout.Step")


def chain_flow(*, delay: float = 0.0, log: str | None = None, flow_id: str = "chain") -> Flow:
    """
    Return the chain flow: one Step looping on itself (entry ``step``).
    """
    flow = Flow(flow_id=flow_id)
    step = Step()
    step.set_config(delay=delay, log=log)
    flow.add_routine(step, "step")
    flow.connect("step", "next", "step", "trigger")
    return flow


def read_log(path: str) -> list[tuple[str, int]]:
    """
    Return the side-effect log as ``(idempotency key, pid)`` pairs, in write order.
    """
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        pairs = [line.split() for line in fh if line.strip()]
    return [(key, int(pid)) for key, pid in pairs]
