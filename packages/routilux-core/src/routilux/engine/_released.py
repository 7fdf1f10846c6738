"""
What a finished job keeps of its run once its last checkpoint is written: a ReleasedRun.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from routilux.engine._run import JobRun
    from routilux.model._definition import FlowDefinition

__all__ = ["ReleasedRun", "release_locked"]


class ReleasedRun:
    """
    What a finished job keeps of its run in ``job_state.run_state``: the flow, the
    strategy and the merge buffers, for code that looks them up and for a resume (the
    tracker stays in ``job_state.execution_tracker``; per-routine counters are taken up
    again from the routine states). The queue, caches, control state and the run object
    itself are let go, so a retained finished JobState stays small: jobs of one flow
    without merge buffers share one ReleasedRun. Resuming the job makes a new run that
    takes these over.
    """

    __slots__ = ("buffers", "flow", "sequential")

    finished = True
    paused = False
    cancelled = False
    failed = False
    abandoned = False
    in_flight = 0

    def __init__(
        self,
        flow: FlowDefinition,
        sequential: bool,
        buffers: dict[tuple[str | None, str], Any] | None,
    ) -> None:
        #: The flow that ran the job.
        self.flow = flow
        #: The job ran sequentially.
        self.sequential = sequential
        #: The job's merge buffers, or ``None`` when it had none.
        self.buffers = buffers

    def is_settled(self) -> bool:
        """A finished job is settled."""
        return True

    def written_states(self) -> None:
        """A released run keeps no record of the states it wrote."""


def release_locked(run: JobRun) -> None:
    """
    With the job's lock held: a finished job whose last checkpoint is written keeps only
    a :class:`ReleasedRun` (freezing its tracker).
    """
    js = run.job_state
    if not (run.finished and run.is_settled() and js.run_state is run):
        return
    run.tracker.freeze()
    js.pack_finished()
    if run.buffers:
        js.release_run(ReleasedRun(run.flow, run.sequential, run.buffers))
    else:
        js.release_run(run.host.released_run(run.sequential))
