"""
Plugins: registration and validation, entry points, per-flow isolation, failure isolation,
and the hooks a real flow calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

import routilux
from routilux import ErrorHandler, ErrorStrategy, Flow, PluginManager, Routine, hookimpl
from routilux.exceptions import PluginError
from routilux.job_state import ChangeKind
from routilux.plugins._manager import default_plugin_manager
from routilux.registry import register_routine, unregister_routine


class Source(Routine):
    """Entry: touches every part of the JobState, emits ``out`` ``n`` times."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out", ["value"])

    def go(self, n: int = 1, pause: bool = False, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        js = ctx.job_state
        js.update_shared_data("seen", 0)
        js.append_to_shared_log({"msg": "hello"})
        js.set_metadata("owner", "tests")
        self.send_output("greeting", text="hi")
        self.emit_deferred_event("out", value=-1)
        for i in range(n):
            self.emit("out", value=i)
        if pause:
            ctx.flow.pause(js, reason="check", checkpoint={"at": "source"})


class Sink(Routine):
    """Counts values in shared data; fails on ``fail_on``."""

    def __init__(self, fail_on: Any = None) -> None:
        super().__init__()
        self.fail_on = fail_on
        self.define_slot("input", self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        if value == self.fail_on:
            raise ValueError(f"bad value {value}")
        ctx.job_state.modify_shared_data("seen", lambda v: (v or 0) + 1)


def make_flow(pm: PluginManager | None, strategy: str = "sequential", fail_on: Any = None) -> Flow:
    flow = Flow("f1", execution_strategy=strategy, max_workers=4, plugins=pm)
    flow.add_routine(Source(), "src")
    flow.add_routine(Sink(fail_on), "sink")
    flow.connect("src", "out", "sink", "input")
    return flow


class Recorder:
    """A plugin implementing every job hook; records (hook, details)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def _add(self, name: str, detail: Any) -> None:
        with self.lock:
            self.calls.append((name, detail))

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def details(self, name: str) -> list[Any]:
        return [d for n, d in self.calls if n == name]

    @hookimpl
    def routilux_job_started(self, flow: Flow, job_state: routilux.JobState) -> None:
        self._add("job_started", (flow.flow_id, job_state.job_id))

    @hookimpl
    def routilux_job_status_changed(self, old: str, new: str) -> None:
        self._add("job_status_changed", (old, new))

    @hookimpl
    def routilux_job_finished(self, job_state: routilux.JobState) -> None:
        self._add("job_finished", job_state.status)

    @hookimpl
    def routilux_activation_started(self, routine_id: str, slot_name: str, attempt: int) -> None:
        self._add("activation_started", (routine_id, slot_name, attempt))

    @hookimpl
    def routilux_activation_finished(
        self, routine_id: str, slot_name: str, duration: float
    ) -> None:
        assert duration >= 0
        self._add("activation_finished", (routine_id, slot_name))

    @hookimpl
    def routilux_activation_failed(
        self, routine_id: str, slot_name: str, error: BaseException, strategy: str
    ) -> None:
        self._add("activation_failed", (routine_id, slot_name, str(error), strategy))

    @hookimpl
    def routilux_event_emitted(
        self, routine_id: str, event_name: str, data: dict[str, Any]
    ) -> None:
        self._add("event_emitted", (routine_id, event_name, dict(data)))

    @hookimpl
    def routilux_output_sent(self, routine_id: str, output_type: str, data: dict[str, Any]) -> None:
        self._add("output_sent", (routine_id, output_type, dict(data)))

    @hookimpl
    def routilux_job_state_changed(self, change: routilux.JobStateChange) -> None:
        self._add("job_state_changed", change)


@pytest.fixture
def structlog_reset() -> Iterator[None]:
    """Give structlog back its unconfigured state after the test (capture_logs configures it)."""
    was = structlog.is_configured()
    config = structlog.get_config()
    yield
    if was:
        structlog.configure(**config)
    else:
        structlog.reset_defaults()


@pytest.fixture
def pm() -> PluginManager:
    """A plugin manager of the test's own, without entry points."""
    return PluginManager(load_entry_points=False)


class TestRegistration:
    def test_register_returns_name_and_lists_plugin(self, pm: PluginManager) -> None:
        """register() returns the name; plugins() lists the plugin."""
        rec = Recorder()
        assert pm.register(rec, "rec") == "rec"
        assert [rec] == pm.plugins()
        assert pm.get_name(rec) == "rec"

    @pytest.mark.parametrize(
        "source",
        [
            "def routilux_job_started(self, nope): pass",
            "def routilux_no_such_hook(self): pass",
            "def routilux_job_started(self, flow):\n    yield",
        ],
        ids=["bad-argument", "unknown-hook", "wrapper"],
    )
    def test_invalid_plugin_raises_plugin_error_carrying_it(
        self, pm: PluginManager, source: str
    ) -> None:
        """A malformed plugin raises PluginError with .plugin, and nothing is registered."""
        namespace: dict[str, Any] = {}
        exec(textwrap.dedent(f"class Bad:\n{textwrap.indent(source, '    ')}"), namespace)
        cls = namespace["Bad"]
        func = next(v for k, v in vars(cls).items() if k.startswith("routilux_"))
        opts = {"wrapper": True} if "yield" in source else {}
        setattr(cls, func.__name__, hookimpl(**opts)(func))
        bad = cls()
        with pytest.raises(PluginError) as info:
            pm.register(bad)
        assert bad is info.value.plugin
        assert pm.plugins() == []
        assert pm.relay() is None

    def test_plugin_error_is_a_runtime_error(self, pm: PluginManager) -> None:
        """Registering the same plugin twice raises PluginError, a RuntimeError."""
        rec = Recorder()
        pm.register(rec)
        with pytest.raises(RuntimeError):
            pm.register(rec)

    def test_unregister(self, pm: PluginManager) -> None:
        """An unregistered plugin no longer makes the relay active."""
        rec = Recorder()
        pm.register(rec)
        assert pm.relay() is not None
        pm.unregister(rec)
        assert pm.relay() is None

    def test_registration_hook_contributes_plugins(self, pm: PluginManager) -> None:
        """Plugins returned by routilux_register_plugins are registered too."""
        rec = Recorder()

        class Contributor:
            @hookimpl
            def routilux_register_plugins(self) -> list[object]:
                return [rec]

        contributor = Contributor()
        pm.register(contributor)
        assert [contributor, rec] == sorted(pm.plugins(), key=lambda p: p is rec)
        assert pm.relay() is not None

    def test_registration_hook_alone_keeps_relay_off(self, pm: PluginManager) -> None:
        """A plugin with only the registration hook (returning nothing) adds no job hook call."""

        class Inert:
            @hookimpl
            def routilux_register_plugins(self) -> None:
                return None

        pm.register(Inert())
        assert pm.relay() is None


class TestHotPath:
    def test_no_plugin_no_relay_no_listener(self, pm: PluginManager) -> None:
        """With no plugin, the job gets no relay and its JobState no change listener."""
        flow = make_flow(pm)
        with flow:
            js = flow.execute("src", {"n": 3})
        assert js.status == "completed"
        assert flow._last_run is not None
        assert flow._last_run.hooks is None
        assert js._listener is None

    def test_listener_dropped_when_job_rerun_without_plugins(self, pm: PluginManager) -> None:
        """A JobState run again by a flow without plugins loses the old listener."""
        rec = Recorder()
        pm.register(rec)
        with make_flow(pm) as flow, make_flow(PluginManager(load_entry_points=False)) as quiet:
            js = flow.execute("src")
            assert js._listener is not None
            quiet.execute("src", job_state=js)
        assert js._listener is None


class TestHooksOfARealFlow:
    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_every_hook_is_called(self, pm: PluginManager, strategy: str) -> None:
        """A job calls the lifecycle, activation, event, output and change hooks."""
        rec = Recorder()
        pm.register(rec)
        with make_flow(pm, strategy, fail_on=1) as flow:
            js = flow.execute("src", {"n": 3})
        assert js.status == "completed"
        assert [("f1", js.job_id)] == rec.details("job_started")
        assert rec.details("job_status_changed") == [
            ("pending", "running"),
            ("running", "completed"),
        ]
        assert rec.details("job_finished") == ["completed"]
        started = rec.details("activation_started")
        assert ("src", "trigger", 1) in started
        assert len(started) == 4
        assert len(rec.details("activation_finished")) == 3
        assert rec.details("activation_failed") == [("sink", "input", "bad value 1", "continue")]
        assert [("src", "out", {"value": i}) for i in range(3)] == rec.details("event_emitted")
        assert rec.details("output_sent") == [("src", "greeting", {"text": "hi"})]
        lifecycle = [n for n in rec.names() if n != "job_state_changed"]
        assert lifecycle[:3] == ["job_status_changed", "job_started", "activation_started"]
        assert lifecycle[-1] == "job_finished"

    def test_change_kinds_cover_the_job_state(self, pm: PluginManager) -> None:
        """Pause, resume and deferred events produce every kind of change record."""
        rec = Recorder()
        pm.register(rec)
        with make_flow(pm) as flow:
            js = flow.execute("src", {"n": 2, "pause": True})
            assert js.status == "paused"
            assert js.pending_tasks
            flow.resume(js)
            assert js.wait_for_completion(10)
        changes = rec.details("job_state_changed")
        # Errors and failed tasks have a test of their own (a job that fails).
        expected = set(ChangeKind) - {ChangeKind.ERROR, ChangeKind.FAILED_TASKS}
        assert expected == {c.kind for c in changes}
        assert all(c.job_id == js.job_id for c in changes)
        deferred = [c for c in changes if c.kind is ChangeKind.DEFERRED_EVENT]
        assert deferred[0].old is None
        assert deferred[0].new["event_name"] == "out"
        assert [e["event_name"] for e in deferred[-1].old] == ["out"]
        assert deferred[-1].new == []
        pending = [c for c in changes if c.kind is ChangeKind.PENDING_TASKS]
        assert len(pending[0].new) == 2
        assert pending[-1].new == []
        [pause] = [c for c in changes if c.kind is ChangeKind.PAUSE_POINT]
        assert pause.new["checkpoint"] == {"at": "source"}
        statuses = [c.new for c in changes if c.kind is ChangeKind.STATUS]
        assert statuses == ["running", "paused", "running", "completed"]

    def test_failure_and_retry_report_errors_and_failed_tasks(self, pm: PluginManager) -> None:
        """A failing job reports its error record and the failed tasks it keeps; the retry
        that takes them reports them gone."""
        rec = Recorder()
        pm.register(rec)
        calls: list[int] = []

        class FailsOnce(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.fire)

            def fire(self, **_: Any) -> None:
                calls.append(1)
                if len(calls) == 1:
                    msg = "first"
                    raise RuntimeError(msg)

        with Flow(flow_id="fails", plugins=pm) as flow:
            flow.add_routine(FailsOnce(), "f")
            js = flow.execute("f")
            assert "failed" == js.status
            flow.retry(js)
            assert js.wait_for_completion(10)
        changes = rec.details("job_state_changed")
        [error] = [c for c in changes if c.kind is ChangeKind.ERROR]
        got = (error.key, error.new.error_type, error.new.strategy)
        assert ("f", "RuntimeError", "stop") == got
        failed = [c for c in changes if c.kind is ChangeKind.FAILED_TASKS]
        assert ["f"] == [t["slot_routine_id"] for t in failed[0].new]
        assert [] == failed[-1].new
        statuses = [c.new for c in changes if c.kind is ChangeKind.STATUS]
        assert ["running", "failed", "running", "completed"] == statuses

    def test_routine_registered_hook(self) -> None:
        """Registering a routine class calls routilux_routine_registered on the default manager."""
        seen: list[tuple[str, type]] = []

        class Plugin:
            @hookimpl
            def routilux_routine_registered(self, name: str, routine_class: type) -> None:
                seen.append((name, routine_class))

        plugin = Plugin()
        routilux.register_plugin(plugin)
        try:
            default_plugin_manager().plugins()  # loaded: notifications flow

            class Probe(Routine):
                pass

            register_routine(Probe, name="tests.plugins.Probe")
            unregister_routine("tests.plugins.Probe")
        finally:
            routilux.unregister_plugin(plugin)
        assert [("tests.plugins.Probe", Probe)] == seen

    def test_routine_registered_reaches_a_plugin_registered_in_code(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A plugin registered with register_plugin hears routine registrations at once,
        before any job, and without the entry-point plugins being loaded for it."""
        import routilux.plugins._manager as plugins_module

        fresh = PluginManager()
        monkeypatch.setattr(plugins_module, "_default", fresh)
        seen: list[str] = []

        class Plugin:
            @hookimpl
            def routilux_routine_registered(self, name: str, routine_class: type) -> None:
                seen.append(name)

        routilux.register_plugin(Plugin())

        class Probe(Routine):
            pass

        register_routine(Probe, name="tests.plugins.Probe2")
        unregister_routine("tests.plugins.Probe2")
        assert (seen, fresh._loaded) == (["tests.plugins.Probe2"], False)


class TestIsolation:
    def test_per_flow_managers_are_isolated(self) -> None:
        """A plugin of one flow's manager sees only that flow's jobs."""
        a, b = Recorder(), Recorder()
        pm_a, pm_b = PluginManager(load_entry_points=False), PluginManager(load_entry_points=False)
        pm_a.register(a)
        pm_b.register(b)
        with make_flow(pm_a) as fa, make_flow(pm_b) as fb:
            ja = fa.execute("src")
            jb = fb.execute("src")
        assert {ja.job_id} == {d[1] for d in a.details("job_started")}
        assert {jb.job_id} == {d[1] for d in b.details("job_started")}

    def test_default_manager_not_used_by_isolated_flow(self, pm: PluginManager) -> None:
        """A plugin registered process-wide does not see a flow with its own manager."""
        rec = Recorder()
        routilux.register_plugin(rec)
        try:
            with make_flow(pm) as flow:
                flow.execute("src")
        finally:
            routilux.unregister_plugin(rec)
        assert rec.calls == []


class Exploding:
    """Raises from every hook it implements."""

    @hookimpl
    def routilux_job_started(self) -> None:
        raise RuntimeError("job_started exploded")

    @hookimpl
    def routilux_activation_started(self) -> None:
        raise RuntimeError("activation_started exploded")

    @hookimpl
    def routilux_activation_failed(self) -> None:
        raise RuntimeError("activation_failed exploded")

    @hookimpl
    def routilux_job_state_changed(self) -> None:
        raise KeyError("job_state_changed exploded")

    @hookimpl
    def routilux_output_sent(self) -> None:
        raise ValueError("output_sent exploded")


def outcome(js: routilux.JobState) -> tuple[Any, ...]:
    """What a job did, without times and without what depends on thread interleaving."""
    return (
        js.status,
        js.shared_data,
        [{k: v for k, v in e.items() if k != "timestamp"} for e in js.shared_log],
        sorted((r.routine_id, r.event_name) for r in js.get_execution_history()),
        {rid: s["activation_count"] for rid, s in js.routine_states.items()},
        [(o["routine_id"], o["output_type"], o["data"]) for o in js.output_log],
    )


class TestFailingPlugin:
    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_raising_plugin_leaves_result_unchanged(self, strategy: str) -> None:
        """A plugin raising from every hook: same job result, failures counted, others still run."""
        with make_flow(PluginManager(load_entry_points=False), strategy, fail_on=0) as flow:
            baseline = outcome(flow.execute("src", {"n": 3}))
        pm = PluginManager(load_entry_points=False)
        pm.register(Exploding(), "exploding")
        rec = Recorder()
        pm.register(rec, "recorder")
        with make_flow(pm, strategy, fail_on=0) as flow:
            js = flow.execute("src", {"n": 3})
        assert baseline == outcome(js)
        assert pm.failures[("exploding", "routilux_job_started")] == 1
        assert pm.failures[("exploding", "routilux_activation_started")] == 4
        assert pm.failures[("exploding", "routilux_activation_failed")] == 1
        assert pm.failures[("exploding", "routilux_output_sent")] == 1
        assert (
            len(rec.details("job_state_changed"))
            == pm.failures[("exploding", "routilux_job_state_changed")]
        )
        assert rec.details("job_finished") == ["completed"]
        assert ("recorder", "routilux_job_started") not in pm.failures

    def test_failure_is_logged_with_plugin_and_hook(self, structlog_reset: None) -> None:
        """The failure log names the plugin and the hook."""
        pm = PluginManager(load_entry_points=False)
        pm.register(Exploding(), "exploding")
        with capture_logs() as logs, make_flow(pm) as flow:
            flow.execute("src")
        failed = [e for e in logs if e["event"] == "plugin_failed"]
        [started] = [e for e in failed if e["hook"] == "routilux_job_started"]
        assert started["plugin"] == "exploding"
        assert started["log_level"] == "error"
        assert "job_started exploded" in started["error"]
        assert {e["hook"] for e in failed} >= {
            "routilux_job_started",
            "routilux_activation_started",
            "routilux_job_state_changed",
        }


ENTRY_POINT_PLUGIN = '''
"""A plugin distributed through the routilux entry-point group (test fixture)."""
import os
from routilux import hookimpl

CALLS = []

@hookimpl
def routilux_job_started(flow, job_state):
    CALLS.append(("job_started", flow.flow_id))

@hookimpl
def routilux_activation_finished(routine_id, slot_name):
    CALLS.append(("activation_finished", routine_id))

@hookimpl
def routilux_job_finished(job_state):
    CALLS.append(("job_finished", job_state.status))
'''


def make_distribution(site: Path, module: str, source: str, entry: str | None = None) -> None:
    """Write a module and its ``*.dist-info`` (with entry_points.txt) into ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[routilux]\n{module} = {entry or module}\n", encoding="utf-8"
    )


class TestEntryPoints:
    def test_fresh_manager_loads_entry_point_plugin(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A plugin declared in a dist-info on sys.path gets the hooks of a real flow."""
        make_distribution(tmp_path, "routilux_probe_ep", ENTRY_POINT_PLUGIN)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "routilux_probe_ep", raising=False)
        pm = PluginManager()
        with make_flow(pm) as flow:
            flow.execute("src", {"n": 2})
            flow.execute("src", {"n": 1})
        probe = sys.modules["routilux_probe_ep"]
        assert probe in pm.plugins()
        assert probe.CALLS[:5] == [
            ("job_started", "f1"),
            ("activation_finished", "src"),
            ("activation_finished", "sink"),
            ("activation_finished", "sink"),
            ("job_finished", "completed"),
        ]
        assert len(probe.CALLS) == 9  # loaded once: one registration, not one per job

    def test_entry_point_plugin_in_subprocess(self, tmp_path: Path) -> None:
        """In a fresh process, the default manager loads the plugin lazily at the first job."""
        make_distribution(tmp_path, "routilux_probe_sub", ENTRY_POINT_PLUGIN)
        script = textwrap.dedent(
            """
            import json, sys
            from routilux import Flow, Routine
            import routilux.plugins._manager as plugins

            class Src(Routine):
                def __init__(self):
                    super().__init__()
                    self.define_slot("trigger", lambda **kw: self.emit("out", v=1))
                    self.define_event("out")

            class Snk(Routine):
                def __init__(self):
                    super().__init__()
                    self.define_slot("input", lambda **kw: None)

            flow = Flow("sub")
            flow.add_routine(Src(), "a")
            flow.add_routine(Snk(), "b")
            flow.connect("a", "out", "b", "input")
            before = "routilux_probe_sub" in sys.modules
            flow.execute("a")
            flow.shutdown()
            import routilux_probe_sub as probe
            print(json.dumps({"before": before, "calls": probe.CALLS}))
            """
        )
        env = {"PYTHONPATH": str(tmp_path)}
        proc = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            timeout=10,
            check=False,
        )
        assert proc.stderr == ""
        result = json.loads(proc.stdout)
        assert result["before"] is False
        assert result["calls"] == [
            ["job_started", "sub"],
            ["activation_finished", "a"],
            ["activation_finished", "b"],
            ["job_finished", "completed"],
        ]

    def test_broken_entry_point_raises_plugin_error_then_can_be_blocked(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An entry point that cannot load raises PluginError naming it; block() skips it."""
        make_distribution(tmp_path, "routilux_probe_broken", "raise ImportError('nope')\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        pm = PluginManager()
        with pytest.raises(PluginError) as info:
            pm.plugins()
        assert info.value.plugin == "routilux_probe_broken"
        pm.block("routilux_probe_broken")
        assert all(pm.get_name(p) != "routilux_probe_broken" for p in pm.plugins())
        assert pm.relay() is None

    def test_invalid_entry_point_plugin_is_named_and_can_be_blocked(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An entry point whose plugin is invalid (a hook with a wrong argument) raises a
        PluginError whose plugin is the entry-point name, which block() then takes."""
        source = (
            "from routilux import hookimpl\n\n"
            "@hookimpl\n"
            "def routilux_job_started(flow, job_state, nonsense):\n"
            "    pass\n"
        )
        make_distribution(tmp_path, "routilux_probe_invalid", source)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "routilux_probe_invalid", raising=False)
        pm = PluginManager()
        with pytest.raises(PluginError, match="routilux_probe_invalid") as info:
            pm.plugins()
        assert info.value.plugin == "routilux_probe_invalid"
        pm.block("routilux_probe_invalid")
        assert all(pm.get_name(p) != "routilux_probe_invalid" for p in pm.plugins())

    def test_not_loaded_without_jobs(self) -> None:
        """Creating flows and managers does not load entry points; the first job does."""
        pm = PluginManager()
        assert pm._loaded is False
        make_flow(pm)
        assert pm._loaded is False
        with make_flow(pm) as flow:
            flow.execute("src")
        assert pm._loaded is True


def test_error_handler_strategy_reported() -> None:
    """routilux_activation_failed reports the strategy applied (here: retry, then continue)."""
    pm = PluginManager(load_entry_points=False)
    rec = Recorder()
    pm.register(rec)
    flow = make_flow(pm, fail_on=0)
    flow.routines["sink"].set_error_handler(
        ErrorHandler(ErrorStrategy.RETRY, max_retries=1, retry_delay=0.0)
    )
    with flow:
        js = flow.execute("src")
    assert js.status == "completed"
    assert [d[3] for d in rec.details("activation_failed")] == ["retry", "continue"]
    assert [d[2] for d in rec.details("activation_started") if d[0] == "sink"] == [1, 2]
