"""
The ``routilux`` entry point of routilux-handlers: installed, inert by default, and enabled by
the environment.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import routilux_handlers
from routilux import PluginManager
from routilux_handlers import AuditTrail, hooks


class TestInertByDefault:
    def test_entry_point_is_declared(self) -> None:
        """routilux-handlers declares routilux_handlers.hooks in the routilux group."""
        eps = importlib.metadata.entry_points(group="routilux", name="handlers")
        assert [ep.value for ep in eps] == ["routilux_handlers.hooks"]

    def test_loaded_module_adds_no_job_hook(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A manager that loads entry points registers the module, yet its relay stays None."""
        monkeypatch.delenv("ROUTILUX_AUDIT", raising=False)
        monkeypatch.delenv("ROUTILUX_OTEL", raising=False)
        pm = PluginManager()
        assert hooks in pm.plugins()
        assert pm.relay() is None

    def test_environment_selects_plugins(self, tmp_path: Path) -> None:
        """ROUTILUX_AUDIT and ROUTILUX_OTEL choose plugins, made once per process."""
        assert hooks.plugins_from_environment({}) == []
        env = {"ROUTILUX_AUDIT": str(tmp_path / "a.jsonl"), "ROUTILUX_OTEL": "0"}
        [audit] = hooks.plugins_from_environment(env)
        assert isinstance(audit, AuditTrail)
        assert tmp_path / "a.jsonl" == audit.path
        assert [audit] == hooks.plugins_from_environment(env)
        assert not (tmp_path / "a.jsonl").exists()

    def test_public_names(self) -> None:
        """Every name in __all__ is importable, including the lazy OTel plugin."""
        for name in routilux_handlers.__all__:
            assert getattr(routilux_handlers, name) is not None
        assert isinstance(routilux_handlers.__version__, str)


SCRIPT = textwrap.dedent(
    """
    import json, sys
    from routilux import Flow, Routine
    from routilux.plugins._manager import default_plugin_manager

    class Src(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", self.go)
            self.define_event("out")
        def go(self, **kw):
            self.get_execution_context().job_state.update_shared_data("k", [1, 2])
            self.emit("out", v=1)

    class Snk(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("input", self.take)
        def take(self, v=None, **kw):
            self.get_execution_context().job_state.modify_shared_data("n", lambda x: (x or 0) + v)

    flow = Flow("envflow", execution_strategy="concurrent", max_workers=4)
    flow.add_routine(Src(), "a")
    flow.add_routine(Snk(), "b")
    flow.connect("a", "out", "b", "input")
    js = flow.execute("a")
    flow.shutdown()
    pm = default_plugin_manager()
    print(json.dumps({
        "job_id": js.job_id,
        "shared_data": js.shared_data,
        "routine_states": js.routine_states,
        "relay": pm.relay() is not None,
        "plugins": sorted(type(p).__name__ for p in pm.plugins()),
        "otel_imported": "opentelemetry" in sys.modules,
    }))
    """
)


def run(env: dict[str, str]) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ROUTILUX_")}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=10,
        check=False,
    )
    assert (proc.stderr, proc.returncode) == ("", 0)
    result: dict[str, object] = json.loads(proc.stdout)
    return result


class TestInAFreshProcess:
    def test_nothing_configured(self, tmp_path: Path) -> None:
        """Installed but unconfigured: no relay, no OpenTelemetry import, no file, no output."""
        result = run({})
        assert (result["relay"], result["otel_imported"]) == (False, False)
        assert result["plugins"] == ["module"]

    def test_audit_from_environment(self, tmp_path: Path) -> None:
        """ROUTILUX_AUDIT=<path> audits every job of the process into that file."""
        path = tmp_path / "audit.jsonl"
        result = run({"ROUTILUX_AUDIT": str(path)})
        assert result["relay"] is True
        rebuilt = routilux_handlers.rebuild_job_state(
            routilux_handlers.read_audit_trail(path), str(result["job_id"])
        )
        assert result["shared_data"] == rebuilt.shared_data
        assert result["routine_states"] == rebuilt.routine_states

    def test_otel_from_environment(self) -> None:
        """ROUTILUX_OTEL=1 registers the OpenTelemetry plugin (global providers)."""
        pytest.importorskip("opentelemetry.sdk")
        result = run({"ROUTILUX_OTEL": "1"})
        assert result["plugins"] == ["OpenTelemetryPlugin", "module"]
        assert result["relay"] is True
