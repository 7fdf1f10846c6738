"""
Registration through entry points, ``from routilux import ...``, third-party routine
packages and flows of built-ins rebuilt in another process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_python

import routilux
import routilux_stdlib
from routilux import Flow
from routilux.registry import get_routine_class, routine_type_name

from .conftest import Entry


class TestRegistration:
    @pytest.mark.parametrize("name", routilux_stdlib.ROUTINES)
    def test_entry_point_and_top_level_import(self, name: str) -> None:
        """
        Every built-in resolves by name, is exported by routilux_stdlib and by routilux.
        """
        cls = get_routine_class(name)
        assert cls is getattr(routilux_stdlib, name)
        assert cls is getattr(routilux, name)
        assert name == routine_type_name(cls)
        assert name in routilux_stdlib.__all__

    def test_naming_a_class_imports_only_its_own_package(self) -> None:
        """Looking up the registered name of a class loads only the entry points of the
        class's own package: serializing a flow of unrelated routines imports no routine
        package, and a stdlib class still gets its declared name."""
        out = run_python(
            """
            import sys
            from routilux import Flow, Routine
            from routilux.exceptions import SerializationError
            from routilux.registry import routine_type_name

            def local():
                class Local(Routine):
                    pass
                return Local

            flow = Flow("f")
            flow.add_routine(local()(), "x")
            try:
                flow.serialize()
            except SerializationError:
                print("refused")
            print("routilux_stdlib" in sys.modules)
            import routilux_stdlib.text as text
            print(routine_type_name(text.TextClipper))
            """
        )
        assert out.split() == ["refused", "False", "TextClipper"]

    def test_import_error_names_the_package_without_stdlib(self, tmp_path: Path) -> None:
        """
        With routilux-stdlib's entry points hidden, the ImportError says what to install.
        """
        out = run_python(
            """
            import importlib.metadata as md
            real = md.entry_points
            def hidden(**kw):
                eps = real(**kw)
                return md.EntryPoints(e for e in eps if not e.value.startswith("routilux_stdlib"))
            md.entry_points = hidden
            import routilux.registry as reg
            reg.entry_points = hidden
            try:
                from routilux import TextClipper
            except ImportError as exc:
                print("ERR", exc)
            """
        )
        assert "ERR" in out
        assert "routilux-stdlib" in out


DIST_MODULE = """
from routilux import Routine


class Shout(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("input", self._go)
        self.define_event("output")

    def _go(self, data=None, **kw):
        self.emit("output", data=str(self._extract_input_data(data, **kw)).upper() + "!")
"""


class TestThirdPartyPackage:
    def test_flow_with_third_party_routine_runs_in_fresh_process(self, tmp_path: Path) -> None:
        """
        A tiny distribution declaring a routine under routilux.routines is found by name.
        """
        site = tmp_path / "site"
        (site / "acme_shout").mkdir(parents=True)
        (site / "acme_shout" / "__init__.py").write_text(DIST_MODULE)
        info = site / "acme_shout-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-shout\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(
            "[routilux.routines]\nacme.Shout = acme_shout:Shout\n"
        )
        # The flow document is written by hand: this process does not have the package.
        doc = {
            "format": "routilux.flow",
            "version": 1,
            "flow_id": "third",
            "execution_strategy": "sequential",
            "max_workers": 1,
            "routines": {
                "shout": {"type": "acme.Shout", "config": {}, "slots": [], "events": []},
                "clip": {
                    "type": "TextClipper",
                    "config": {"max_length": 3, "truncation_message": "~"},
                    "slots": [],
                    "events": [],
                },
            },
            "connections": [],
        }
        (tmp_path / "flow.json").write_text(json.dumps(doc))
        out = run_python(
            f"""
            import json
            from routilux import Flow, Routine
            from routilux.registry import get_routine_class
            flow = Flow()
            flow.deserialize(json.load(open({str(tmp_path / "flow.json")!r})))
            shout = flow.routines["shout"]
            print(type(shout).__name__, type(shout).__module__)
            got = []
            from routilux import Slot
            shout.get_event("output").connect(Slot("cap", None, lambda **kw: got.append(kw)))
            shout.get_slot("input").receive({{"data": "hi"}})
            print(got[0]["data"], flow.routines["clip"].get_config("max_length"))
            """,
            prelude=f"import sys\nsys.path.insert(0, {str(site)!r})\n",
        )
        assert "Shout acme_shout" in out
        assert "HI! 3" in out


class TestCrossProcess:
    def test_builtin_flow_serialized_here_runs_there(self, tmp_path: Path) -> None:
        """
        A flow made only of built-ins (plus a stdlib-free entry) is rebuilt and run elsewhere.
        """
        import routilux_stdlib as std

        flow = Flow(flow_id="xproc")
        flt = std.Filter()
        flt.set_config(condition="data % 2 == 1")
        split = std.Splitter()
        batch = std.Batcher()
        batch.set_config(batch_size=2)
        render = std.TextRenderer()
        for rid, r in [("filter", flt), ("split", split), ("batch", batch), ("render", render)]:
            flow.add_routine(r, rid)
        flow.connect("filter", "output", "split", "input")
        flow.connect("split", "item", "batch", "input")
        flow.connect("split", "done", "batch", "flush")
        flow.connect("batch", "batch", "render", "input", param_mapping={"items": "data"})
        path = tmp_path / "flow.json"
        path.write_text(json.dumps(flow.serialize()))
        assert Entry  # the entry lives in the other process's script
        out = run_python(
            f"""
            import json
            from routilux import Flow, Routine, Slot
            flow = Flow()
            flow.deserialize(json.load(open({str(path)!r})))

            class Start(Routine):
                def __init__(self):
                    super().__init__()
                    self.define_slot("trigger", lambda **kw: self.emit("out", **kw))
                    self.define_event("out")

            flow.add_routine(Start(), "entry")
            flow.connect("entry", "out", "filter", "input")
            got = []
            flow.routines["render"].get_event("output").connect(
                Slot("cap", None, lambda **kw: got.append(kw["rendered_text"])))
            job = flow.execute("entry", {{"data": [1, 2, 3, 4, 5]}})
            print(job.status, "|".join(got))
            """
        )
        # Odd numbers pass the filter; [1, 3] fill a batch and [5] comes with the flush.
        assert "completed <item_0>1</item_0>\n<item_1>3</item_1>|<item_0>5</item_0>" in out
