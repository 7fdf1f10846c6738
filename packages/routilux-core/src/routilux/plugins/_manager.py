"""
The plugin manager: pluggy, the ``routilux`` entry-point group, and isolated hook calls.

One :class:`PluginManager` serves every flow unless a flow is given its own. Entry-point
plugins are loaded once per manager, lazily, when the first job of a flow using it starts
(or when :meth:`PluginManager.plugins` is called). The scheduler asks :meth:`PluginManager.relay`
for a :class:`HookRelay` once per job; it is ``None`` when no plugin implements a job hook, and
then the job makes no hook calls at all.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from routilux._util._log import bind, logger, repr_of
from routilux.model._job_state import ChangeKind, JobStateChange
from routilux.plugins import _hookspecs as hookspecs


if TYPE_CHECKING:
    from routilux.model._definition import FlowDefinition as Flow
    from routilux.model._job_state import JobState

__all__ = [
    "ENTRY_POINT_GROUP",
    "HookRelay",
    "PluginManager",
    "default_plugin_manager",
    "register_plugin",
    "unregister_plugin",
]

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
"""The entry-point group plugins are declared in: ``[project.entry-points.routilux]``."""

_REGISTER_HOOK = "routilux_register_plugins"
_JOB_HOOKS: tuple[str, ...] = tuple(
    name
    for name in sorted(hookspecs.__all__)
    if name.startswith("routilux_") and name not in (_REGISTER_HOOK, "routilux_routine_registered")
)
"""The hooks a job calls; a relay is active only when one of these has an implementation."""
_CALLED_HOOKS: tuple[str, ...] = (*_JOB_HOOKS, "routilux_routine_registered")


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
        self._lock = threading.RLock()
        self._failures_lock = threading.Lock()
        #: Failures of hook implementations, by ``(plugin name, hook name)``.
        self.failures: Counter[tuple[str, str]] = Counter()
        self._relay: HookRelay | None = None

    def __repr__(self) -> str:
        return f"PluginManager[{', '.join(self._names())}]"

    def _names(self) -> list[str]:
        return [str(self._pm.get_name(p)) for p in self._pm.get_plugins()]

    # -- registration ---------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> str:
        """
        Register a plugin (an object or module with ``@hookimpl`` functions); return its name.

        If the plugin implements ``routilux_register_plugins``, the plugins it returns are
        registered too.

        Raises:
            PluginError: A hook implementation does not match its specification, names an
                unknown ``routilux_`` hook, is a wrapper, or the plugin (or its name) is
                registered already. Nothing is registered then.
        """
        with self._lock:
            registered = self._register(plugin, name)
            self._relay = None
        self._register_contributed(plugin)
        return registered

    def _register(self, plugin: object, name: str | None) -> str:
        from routilux.exceptions import PluginError

        pm = self._pm
        try:
            registered = pm.register(plugin, name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            msg = f"cannot register plugin {plugin!r}: {exc}"
            raise PluginError(msg, plugin=plugin) from exc
        if registered is None:
            msg = f"cannot register plugin {plugin!r}: the name {name!r} is blocked"
            raise PluginError(msg, plugin=plugin)
        problem: str | None = None
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            problem = str(exc)
        if problem is None:
            for hook_name, impl in self._impls_of(plugin):
                if impl.hookwrapper or impl.wrapper:
                    problem = f"its {hook_name} is a wrapper; routilux hooks take plain functions"
                    break
        if problem is not None:
            pm.unregister(plugin)
            msg = f"cannot register plugin {plugin!r}: {problem}"
            raise PluginError(msg, plugin=plugin)
        return str(registered)

    def _impls_of(self, plugin: object) -> list[tuple[str, Any]]:
        # The (hook name, HookImpl) pairs of one registered plugin.
        return [
            (caller.name, impl)
            for caller in self._pm.get_hookcallers(plugin) or ()
            for impl in caller.get_hookimpls()
            if impl.plugin is plugin
        ]

    def _register_contributed(self, plugin: object) -> None:
        # Run the plugin's registration hook (once) and register what it returns.
        for hook_name, impl in self._impls_of(plugin):
            if hook_name != _REGISTER_HOOK:
                continue
            try:
                extra = impl.function()
            except Exception as exc:  # noqa: BLE001  # logged and counted, like any hook
                self._count_failure(impl.plugin_name, _REGISTER_HOOK, exc)
                continue
            for other in extra or ():
                if not self._pm.is_registered(other):
                    self.register(other)

    def unregister(self, plugin: object) -> None:
        """
        Remove a plugin (registered, or loaded from an entry point).
        """
        with self._lock:
            self._pm.unregister(plugin)
            self._relay = None

    def block(self, name: str) -> None:
        """
        Keep the plugin registered or declared as an entry point under ``name`` out of this
        manager (unregistering it if it is in).
        """
        with self._lock:
            self._pm.set_blocked(name)
            self._relay = None

    def plugins(self) -> list[object]:
        """
        Return the registered plugins (loading the entry points first, if not done yet).
        """
        self._ensure_loaded()
        return list(self._pm.get_plugins())

    def get_name(self, plugin: object) -> str | None:
        """
        Return the name ``plugin`` is registered under, or ``None``.
        """
        return self._pm.get_name(plugin)

    # -- entry points ---------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._load_once()

    def _load_once(self) -> None:
        with self._lock:
            if self._loaded:
                return
            if self._load_entry_points:
                self._load_group()
            self._loaded = True
            self._relay = None

    def _load_group(self) -> None:
        from routilux.exceptions import PluginError

        pm = self._pm
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                msg = (
                    f"cannot load plugin {ep.name!r} ({ep.value}) of entry-point group "
                    f"{ENTRY_POINT_GROUP!r}: {exc!r}"
                )
                raise PluginError(msg, plugin=ep.name) from exc
            try:
                self.register(plugin, ep.name)
            except PluginError as exc:  # name the entry point: block() takes that name
                msg = f"entry point {ep.name!r} ({ep.value}): {exc}"
                raise PluginError(msg, plugin=ep.name) from exc

    def load_entry_points(self) -> None:
        """
        Load the ``routilux`` entry-point plugins now instead of at the first job.

        Raises:
            PluginError: An entry point cannot be imported or its plugin is invalid. The
                plugins loaded before it stay; use :meth:`block` to leave the bad one out.
        """
        self._ensure_loaded()

    # -- calling --------------------------------------------------------------------

    def relay(self, listener: object | None = None) -> HookRelay | None:
        """
        Return the hook caller for a job, or ``None`` when no plugin implements any job
        hook (then the scheduler makes no hook calls at all).

        Args:
            listener: An object of the job's own whose methods named like job hooks are
                called after the plugins' (the job's event stream); the relay is then
                made for that job only.
        """
        self._ensure_loaded()
        if listener is not None:
            with self._lock:
                return HookRelay(self, listener)
        relay = self._relay
        if relay is None:
            with self._lock:
                relay = self._relay
                if relay is None:
                    relay = HookRelay(self)
                    self._relay = relay
        return relay if relay.active else None

    def call(self, hook_name: str, **kwargs: Any) -> None:
        """
        Call every implementation of ``hook_name``, isolating failures.
        """
        self._ensure_loaded()
        self._call_registered(hook_name, **kwargs)

    def _call_registered(self, hook_name: str, **kwargs: Any) -> None:
        # Call the plugins registered so far (entry points only if loaded already).
        relay = self._relay
        if relay is None:
            with self._lock:
                relay = self._relay
                if relay is None:
                    relay = self._relay = HookRelay(self)
        relay.call(hook_name, **kwargs)

    def _count_failure(
        self,
        plugin_name: str,
        hook_name: str,
        exc: BaseException,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        with self._failures_lock:
            self.failures[(plugin_name, hook_name)] += 1
        log_hook_failure(hook_name, exc, arguments or {}, plugin=plugin_name)


def _hook_log(arguments: Mapping[str, Any]) -> Any:
    # The logger for a failed hook call, bound to the flow_id, job_id and routine_id its
    # arguments give (a job hook's ``flow``, ``job_state``, ``routine_id`` or ``change``).
    context: dict[str, Any] = {}
    flow = arguments.get("flow")
    job_state = arguments.get("job_state")
    if flow is not None:
        context["flow_id"] = getattr(flow, "flow_id", None)
    elif job_state is not None:
        context["flow_id"] = getattr(job_state, "flow_id", None)
    if job_state is not None:
        context["job_id"] = getattr(job_state, "job_id", None)
    routine_id = arguments.get("routine_id")
    if routine_id is None:
        routine_id = getattr(arguments.get("change"), "routine_id", None)
    if routine_id is not None:
        context["routine_id"] = routine_id
    return bind(**context) if context else logger


def log_hook_failure(
    hook_name: str, exc: BaseException, arguments: Mapping[str, Any], plugin: str | None = None
) -> None:
    """
    Log ``plugin_failed`` (an error) for a hook call that raised ``exc``, bound to the job's
    ``flow_id``, ``job_id`` and ``routine_id`` where the hook's ``arguments`` give them.
    """
    extra = {"plugin": plugin} if plugin is not None else {}
    _hook_log(arguments).error(
        "plugin_failed", **extra, hook=hook_name, error=repr_of(exc), exc_info=exc
    )


class HookRelay:
    """
    Calls hook implementations one by one so that a failing plugin is logged, counted and
    skipped without affecting the others or the job.

    A relay is a snapshot of the manager's plugins: a job keeps the relay it started with.
    """

    def __init__(self, manager: PluginManager, listener: object | None = None) -> None:
        self._manager = manager
        #: Per hook, in call order: (function, argument names, plugin name).
        self._impls: dict[str, list[tuple[Callable[..., object], tuple[str, ...], str]]] = {}
        hooks = manager._pm.hook
        for name in _CALLED_HOOKS:
            caller = getattr(hooks, name, None)
            impls = list(reversed(caller.get_hookimpls())) if caller is not None else []
            if impls:
                self._impls[name] = [(i.function, tuple(i.argnames), i.plugin_name) for i in impls]
        for name in _JOB_HOOKS if listener is not None else ():
            method = getattr(listener, name, None)
            if method is not None:
                argnames = tuple(inspect.signature(method).parameters)
                self._impls.setdefault(name, []).append((method, argnames, "on_event"))
        #: True when at least one job hook has an implementation.
        self.active = any(name in self._impls for name in _JOB_HOOKS)

    def call(self, hook_name: str, **kwargs: Any) -> None:
        """
        Call each implementation of ``hook_name`` with the arguments it asks for.
        """
        for function, argnames, plugin_name in self._impls.get(hook_name, ()):
            try:
                function(*[kwargs[arg] for arg in argnames])
            except Exception as exc:  # noqa: BLE001  # a plugin never breaks a job: logged, counted
                self._manager._count_failure(plugin_name, hook_name, exc, kwargs)

    def log_failure(self, hook_name: str, exc: BaseException, arguments: Mapping[str, Any]) -> None:
        """
        Log a failure that escaped :meth:`call` (a ``BaseException``) with the job's context.
        """
        log_hook_failure(hook_name, exc, arguments)

    def change_listener(
        self, flow: Flow, job_state: JobState
    ) -> Callable[[JobStateChange], None] | None:
        """
        Return the JobState listener that turns changes into hook calls, or ``None`` when
        no plugin wants them.
        """
        wants_change = "routilux_job_state_changed" in self._impls
        wants_status = "routilux_job_status_changed" in self._impls
        wants_output = "routilux_output_sent" in self._impls
        if not (wants_change or wants_status or wants_output):
            return None

        def listener(change: JobStateChange) -> None:
            if wants_change:
                self.call(
                    "routilux_job_state_changed", flow=flow, job_state=job_state, change=change
                )
            if wants_status and change.kind is ChangeKind.STATUS:
                self.call(
                    "routilux_job_status_changed",
                    flow=flow,
                    job_state=job_state,
                    old=change.old,
                    new=change.new,
                )
            if wants_output and change.kind is ChangeKind.OUTPUT:
                self.call(
                    "routilux_output_sent",
                    flow=flow,
                    job_state=job_state,
                    routine_id=change.routine_id,
                    output_type=change.key,
                    data=change.new["data"],
                )

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
    Call a hook on the plugins of the process-wide manager registered so far, if it is in
    use (never loads entry points: registering routines at import time must stay cheap).
    """
    manager = _default
    if manager is not None:
        manager._call_registered(hook_name, **kwargs)


def register_plugin(plugin: object, name: str | None = None) -> str:
    """
    Register a plugin with the process-wide plugin manager; return its name.

    Raises:
        PluginError: The plugin is invalid or registered already.
    """
    return default_plugin_manager().register(plugin, name)


def unregister_plugin(plugin: object) -> None:
    """
    Remove a plugin from the process-wide plugin manager.
    """
    default_plugin_manager().unregister(plugin)
