"""
The plugin hooks of a job behind a boundary no exception of a plugin crosses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routilux._util._log import logger, repr_of


if TYPE_CHECKING:
    from routilux.engine._run import JobRun
    from routilux.model._definition import FlowDefinition
    from routilux.model._job_state import JobState
    from routilux.plugins._manager import HookRelay

__all__ = ["IsolatedHooks", "install_hooks"]


class IsolatedHooks:
    """
    The job's hook relay behind a boundary that no exception of a plugin crosses, not
    even a ``BaseException`` (``KeyboardInterrupt`` raised by a hook on a worker): the
    relay isolates ``Exception``; anything else is logged here, so a plugin can never
    leave the job's bookkeeping half done (a lost activation, an unwoken waiter).
    """

    __slots__ = ("relay",)

    def __init__(self, relay: HookRelay) -> None:
        #: The relay of the job's plugin manager.
        self.relay = relay

    def call(self, hook_name: str, **kwargs: Any) -> None:
        """
        Call the hook ``hook_name`` with ``kwargs``; a failure is logged.
        """
        try:
            self.relay.call(hook_name, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the hook-call boundary: logged
            self.relay.log_failure(hook_name, exc, kwargs)

    def change_listener(self, flow: FlowDefinition, job_state: JobState) -> Any:
        """
        Return the job's change listener behind the same boundary, or ``None`` when no
        plugin listens.
        """
        listener = self.relay.change_listener(flow, job_state)
        if listener is None:
            return None

        def isolated(change: Any) -> None:
            try:
                listener(change)
            except BaseException as exc:  # the hook-call boundary: logged
                log = logger.bind(
                    flow_id=flow.flow_id, job_id=job_state.job_id, routine_id=change.routine_id
                )
                log.error("plugin_failed", hook="change_listener", error=repr_of(exc), exc_info=exc)

        return isolated


def install_hooks(run: JobRun, relay: HookRelay | None) -> None:
    """
    Give ``run`` the hooks of ``relay`` (``None``: no hook calls at all), and its JobState
    the change listener they need. Called when the run is made, and when a resume or retry
    streams the job (its relay then has the stream's listener).
    """
    with run.lock:
        hooks = IsolatedHooks(relay) if relay is not None else None
        run.hooks = hooks
        run.plain = hooks is None and not run.debug
        job_state = run.job_state
        listener = hooks.change_listener(run.flow, job_state) if hooks is not None else None
        job_state.set_change_listener(listener)
