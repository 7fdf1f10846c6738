"""
The plugin manager: pluggy, the ``routilux`` entry-point group, and isolated hook calls.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from ._log import logger
from .job_state import ChangeKind, JobStateChange


if TYPE_CHECKING:
    from ._flow import Flow
    from .job_state import JobState

__all__ = ["HookRelay", "PluginManager", "default_plugin_manager"]


class PluginManager:
    """
    Holds plugins and calls their hooks. One default manager serves every flow; a flow
    given its own (``Flow(plugins=PluginManager(...))``) sees only that one's plugins.

    Args:
        load_entry_points: Load the plugins of the ``routilux`` entry-point group (once,
            when the first job starts).
    """

    def __init__(self, load_entry_points: bool = True) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._load_entry_points = load_entry_points
        self._loaded = False
        self._lock = threading.Lock()
        #: Failures of hook implementations, by ``(plugin name, hook name)``.
        self.failures: Counter[tuple[str, str]] = Counter()
        self._relay: HookRelay | None = None

    def register(self, plugin: object, name: str | None = None) -> str:
        """
        Register a plugin (an object or module with ``@hookimpl`` functions); return its name.

        Raises:
            PluginError: A hook implementation does not match its specification.
        """
        from .exceptions import PluginError

        try:
            registered = self._pm.register(plugin, name)
            self._pm.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            msg = f"cannot register plugin {plugin!r}: {exc}"
            raise PluginError(msg) from exc
        self._relay = None
        return str(registered)

    def unregister(self, plugin: object) -> None:
        """
        Remove a plugin.
        """
        self._pm.unregister(plugin)
        self._relay = None

    def plugins(self) -> list[object]:
        """
        Return the registered plugins.
        """
        self._ensure_loaded()
        return list(self._pm.get_plugins())

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if self._load_entry_points:
                self._pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
                self._pm.check_pending()
            self._relay = None

    def relay(self) -> HookRelay | None:
        """
        Return the hook caller, or ``None`` when no plugin implements any hook (then the
        scheduler makes no hook calls at all).
        """
        self._ensure_loaded()
        relay = self._relay
        if relay is None:
            relay = HookRelay(self)
            self._relay = relay
        return relay if relay.active else None

    def call(self, hook_name: str, **kwargs: Any) -> None:
        """
        Call every implementation of ``hook_name``, isolating failures.
        """
        relay = self.relay()
        if relay is not None:
            relay.call(hook_name, **kwargs)


class HookRelay:
    """
    Calls hook implementations one by one so that a failing plugin is logged, counted and
    skipped without affecting the others or the job.
    """

    def __init__(self, manager: PluginManager) -> None:
        self._manager = manager
        self._impls: dict[str, list[Any]] = {}
        for name in dir(hookspecs):
            if name.startswith("routilux_"):
                hook = getattr(manager._pm.hook, name, None)
                impls = list(reversed(hook.get_hookimpls())) if hook is not None else []
                if impls:
                    self._impls[name] = impls
        #: True when at least one hook has an implementation.
        self.active = bool(self._impls)

    def call(self, hook_name: str, **kwargs: Any) -> None:
        """
        Call each implementation of ``hook_name`` with the arguments it asks for.
        """
        for impl in self._impls.get(hook_name, ()):
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:
                self._manager.failures[(impl.plugin_name, hook_name)] += 1
                logger.error(
                    "plugin_failed", plugin=impl.plugin_name, hook=hook_name, error=repr(exc),
                    exc_info=exc,
                )

    def change_listener(self, flow: Flow, job_state: JobState) -> Callable[[JobStateChange], None] | None:
        """
        Return the JobState listener that turns changes into hook calls.
        """
        wants_change = "routilux_job_state_changed" in self._impls
        wants_status = "routilux_job_status_changed" in self._impls
        wants_output = "routilux_output_sent" in self._impls
        if not (wants_change or wants_status or wants_output):
            return None

        def listener(change: JobStateChange) -> None:
            if wants_change:
                self.call("routilux_job_state_changed", flow=flow, job_state=job_state,
                          change=change)
            if wants_status and change.kind is ChangeKind.STATUS:
                self.call("routilux_job_status_changed", flow=flow, job_state=job_state,
                          old=change.old, new=change.new)
            if wants_output and change.kind is ChangeKind.OUTPUT:
                self.call("routilux_output_sent", flow=flow, job_state=job_state,
                          routine_id=change.routine_id, output_type=change.key,
                          data=change.new["data"])

        return listener


_default: PluginManager | None = None
_default_lock = threading.Lock()


def default_plugin_manager() -> PluginManager:
    """
    Return the process-wide plugin manager (created on first use).
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = PluginManager()
    return _default


def notify_loaded_plugins(hook_name: str, **kwargs: Any) -> None:
    """
    Call a hook on the process-wide manager only if it is already in use (never loads
    entry points: registering routines at import time must stay cheap).
    """
    manager = _default
    if manager is not None and manager._loaded:
        manager.call(hook_name, **kwargs)


def register_plugin(plugin: object, name: str | None = None) -> str:
    """
    Register a plugin with the process-wide plugin manager; return its name.
    """
    return default_plugin_manager().register(plugin, name)


def unregister_plugin(plugin: object) -> None:
    """
    Remove a plugin from the process-wide plugin manager.
    """
    default_plugin_manager().unregister(plugin)
