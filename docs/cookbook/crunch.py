"""
The routines of the long job (registered by type name, for ``routilux run --import crunch.py``).
"""

import time
from pathlib import Path

from routilux import Routine
from routilux.registry import register_routine


@register_routine(name="cookbook.Numbers")
class Numbers(Routine):
    """Emits the numbers 0 to ``count - 1``, one event each."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", self.start)
        self.define_event("number", ["n"])

    def start(self, count=10, **_):
        for n in range(count):
            self.emit("number", n=n)


@register_routine(name="cookbook.Crunch")
class Crunch(Routine):
    """A slow step with an effect outside the job: each number it finishes is written to a
    file (the config's ``log``), and its square is added to the job's shared data."""

    def __init__(self):
        super().__init__()
        self.set_config(log="crunched.txt", seconds=0.1)
        self.define_slot("input", self.crunch)

    def crunch(self, n, **_):
        time.sleep(self.get_config("seconds"))  # the work
        with Path(self.get_config("log")).open("a") as log:
            log.write(f"{n}\n")
        ctx = self.get_execution_context()
        ctx.job_state.modify_shared_data("squares", lambda v: {**(v or {}), str(n): n * n})
