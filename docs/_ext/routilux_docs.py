"""
Directives of the routilux documentation, drawn from the code at build time so that a page can
never disagree with it.

- ``{flow} TARGET``: the picture of a flow, the DOT of :func:`routilux.graph.render_dot` drawn
  by ``sphinx.ext.graphviz``. TARGET is a flow file (``examples/approval/flow.json``), or
  ``FILE.py:NAME`` or ``module:NAME`` where NAME is a flow or a function that returns one.
  A path is relative to the page, or to the docs folder when it starts with ``/``.
- ``{lifecycle}``: the picture of a job's lifecycle, drawn from
  :data:`routilux.lifecycle.TRANSITIONS` (an arrow for each action that changes a job's status;
  the engine's own steps dashed).
- ``{routine-slots} TYPE``, ``{routine-events} TYPE``, ``{routine-config} TYPE``: the tables of
  a registered routine type, read from its class: its slots and what their handlers read, its
  events and what they carry, and its config keys with their defaults and the meaning its
  docstring's ``Config:`` section gives (a key missing there fails the build).
"""

from __future__ import annotations

import importlib
import inspect
import re
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.ext.graphviz import figure_wrapper, graphviz
from sphinx.util.docutils import SphinxDirective

from routilux import Flow, Routine
from routilux.graph import STATE_STYLES, render_dot
from routilux.lifecycle import ENGINE_ACTIONS, STATUSES, TRANSITIONS
from routilux.registry import get_routine_class
from routilux.store import read_flow_file


_PROGRAMS: dict[Path, dict[str, Any]] = {}
"""The globals of each program a page drew a flow of: run once per build, since a program
registers its routine types and a type name is taken once per process."""


def _program(path: Path) -> dict[str, Any]:
    # Run a program as `python FILE` would, but without its `if __name__ == "__main__"` part:
    # its folder first on sys.path, for the modules beside it.
    if path not in _PROGRAMS:
        sys.path.insert(0, str(path.parent))
        try:
            _PROGRAMS[path] = runpy.run_path(str(path), run_name="routilux_docs_program")
        finally:
            sys.path.remove(str(path.parent))
    return _PROGRAMS[path]


class FlowDirective(SphinxDirective):
    """
    The picture of a flow, drawn from the flow itself.
    """

    required_arguments = 1
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {
        "caption": directives.unchanged,
        "alt": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        target = self.arguments[0]
        try:
            flow = self._load(target)
            code = render_dot(flow)
        except Exception as exc:
            msg = f"cannot draw the flow {target!r}: {type(exc).__name__}: {exc}"
            raise self.error(msg) from exc
        node = _picture(code, self.options.get("alt", f"the flow {target}"))
        node["options"] = {"docname": self.env.docname}
        if "caption" in self.options:
            return [figure_wrapper(self, node, self.options["caption"])]
        return [node]

    def _load(self, target: str) -> Any:
        where, sep, name = target.rpartition(":")
        if not sep:
            rel, path = self.env.relfn2path(target)
            self.env.note_dependency(rel)
            return read_flow_file(path)
        if where.endswith(".py"):
            rel, path = self.env.relfn2path(where)
            self.env.note_dependency(rel)
            value = _program(Path(path).resolve())[name]
        else:
            value = getattr(importlib.import_module(where), name)
        return value() if callable(value) and not isinstance(value, Flow) else value


def _picture(dot: str, alt: str) -> graphviz:
    node = graphviz()
    node["code"] = dot
    node["alt"] = alt
    node["classes"] = ["routilux-flow"]
    return node


# A status is drawn as the routine state it resembles (the colours of routilux.graph).
_LOOKS = {"running": "running", "paused": "waiting", "completed": "completed", "failed": "failed"}


def lifecycle_dot() -> str:
    """
    Return the DOT of the job lifecycle of :data:`routilux.lifecycle.TRANSITIONS`: one box per
    status (the statuses a job begins in share one where they behave alike), one arrow per
    status change, labelled
    with the actions that make it; the engine's own steps (finish, fail) are dashed, no-ops
    and refusals are not drawn.
    """
    rows = {s: tuple(TRANSITIONS[key] for key in TRANSITIONS if key[0] == s) for s in STATUSES}
    targets = set(TRANSITIONS.values())
    starts = [s for s in STATUSES if s not in targets]  # where a job begins (pending, queued)
    box = {s: s for s in targets & set(STATUSES)}
    box.update({s: " / ".join(o for o in starts if rows[o] == rows[s]) for s in starts})
    lines = [
        "digraph lifecycle {",
        '  rankdir=LR; bgcolor="transparent";',  # the look of routilux.graph's pictures
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=12];',
        '  edge [fontname="Helvetica", fontsize=10, color="#57606a"];',
    ]
    for name in dict.fromkeys(box[s] for s in STATUSES):
        look = STATE_STYLES[_LOOKS.get(name, "idle")]
        lines.append(
            f'  "{name}" [color="{look.stroke}", fillcolor="{look.fill}", '
            f"penwidth={look.penwidth:g}];"
        )
    arrows: dict[tuple[str, str, bool], list[str]] = {}
    for (status, action), target in TRANSITIONS.items():
        if target is None or target == status or not box[status].startswith(status):
            continue  # refused, a no-op, or drawn from the first status of its box
        engine = action in ENGINE_ACTIONS
        arrows.setdefault((box[status], box[target], engine), []).append(action.value)
    for (source, target, engine), actions in arrows.items():
        style = ", style=dashed" if engine else ""
        lines.append(f'  "{source}" -> "{target}" [label="{", ".join(actions)}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


class LifecycleDirective(SphinxDirective):
    """
    The picture of a job's lifecycle, drawn from the lifecycle's transition table.
    """

    def run(self) -> list[nodes.Node]:
        node = _picture(lifecycle_dot(), "the job lifecycle: statuses and the actions between")
        node["options"] = {"docname": self.env.docname}
        return [node]


def _literal(text: str) -> nodes.literal:
    return nodes.literal(text, text)


def _inline(text: str) -> list[nodes.Node]:
    # Docstring text: ``code`` as literals, :role:`x` as the literal x, the rest as text.
    out: list[nodes.Node] = []
    for part in re.split(r"(``[^`]+``|:\w+:`[^`]+`)", text):
        if part.startswith("``"):
            out.append(_literal(part[2:-2]))
        elif part.startswith(":"):
            out.append(_literal(part.split("`")[1].lstrip("~").rsplit(".", 1)[-1]))
        elif part:
            out.append(nodes.Text(part))
    return out


def _table(headers: list[str], rows: list[list[list[nodes.Node]]]) -> nodes.table:
    table = nodes.table(classes=["routine-table"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    group.extend(nodes.colspec(colwidth=1) for _ in headers)
    head = nodes.thead()
    group += head
    head += nodes.row("", *(nodes.entry("", nodes.paragraph(h, h)) for h in headers))
    body = nodes.tbody()
    group += body
    for cells in rows:
        body += nodes.row("", *(nodes.entry("", nodes.paragraph("", "", *c)) for c in cells))
    return table


def _config_docs(cls: type[Routine]) -> dict[str, tuple[str, str]]:
    # key -> (type, meaning) from the class docstring's "Config:" section, whose entries read
    # "key (type): meaning" or "key_a, key_b (type): meaning", continued on deeper lines.
    doc = inspect.getdoc(cls) or ""
    section = re.search(r"^Config:\n((?:[ \t]+\S.*\n?|\n)*)", doc, re.MULTILINE)
    found: dict[str, tuple[str, str]] = {}
    if section is None:
        return found
    entry = re.compile(r"^ {4}(?P<keys>\w+(?:, \w+)*)(?: \((?P<type>[^)]*)\))?: (?P<text>.*)")
    keys: list[str] = []
    for line in section.group(1).splitlines():
        match = entry.match(line)
        if match is not None:
            keys = match.group("keys").split(", ")
            for key in keys:
                found[key] = (match.group("type") or "", match.group("text").strip())
        elif line.strip() and keys:
            for key in keys:
                kind, text = found[key]
                found[key] = (kind, f"{text} {line.strip()}")
    return found


def _reads(handler: Any) -> list[nodes.Node]:
    # The named parameters of a slot's handler, and whether it takes other keys too.
    if handler is None:
        return [nodes.Text("-")]
    params = inspect.signature(handler).parameters.values()
    names = [p.name for p in params if p.kind is not p.VAR_KEYWORD and not p.name.startswith("_")]
    out: list[nodes.Node] = []
    for i, name in enumerate(names):
        out += [nodes.Text(", ")] if i else []
        out.append(_literal(name))
    if not names:
        out.append(nodes.Text("nothing (a signal)"))
    return out


def _slots(cls: type[Routine], routine: Routine) -> nodes.table:
    rows = [[[_literal(name)], _reads(slot.handler)] for name, slot in routine.get_slots().items()]
    return _table(["slot", "reads"], rows)


def _events(cls: type[Routine], routine: Routine) -> nodes.table:
    rows = []
    for name, event in routine.get_events().items():
        carries: list[nodes.Node] = []
        for i, param in enumerate(event.output_params):
            carries += [nodes.Text(", ")] if i else []
            carries.append(_literal(param))
        rows.append([[_literal(name)], carries])
    return _table(["event", "carries"], rows)


def _config(cls: type[Routine], routine: Routine) -> nodes.table:
    docs = _config_docs(cls)
    config = routine.config()
    missing = sorted(set(config) - set(docs))
    if missing:
        msg = f"{cls.__qualname__}'s docstring has no Config entry for {', '.join(missing)}"
        raise ValueError(msg)
    rows = [
        [
            [_literal(key)],
            [_literal(docs[key][0])] if docs[key][0] else [],
            [_literal(repr(value))],
            _inline(docs[key][1]),
        ]
        for key, value in config.items()
    ]
    return _table(["key", "type", "default", "meaning"], rows)


def _routine_directive(
    build: Callable[[type[Routine], Routine], nodes.table],
) -> type[SphinxDirective]:
    # A directive whose argument is a registered routine type name and whose body is the
    # table ``build`` makes of that class and an instance of it.
    class RoutineTable(SphinxDirective):
        required_arguments = 1

        def run(self) -> list[nodes.Node]:
            name = self.arguments[0]
            try:
                cls = get_routine_class(name)
                return [build(cls, cls())]
            except Exception as exc:
                msg = f"cannot document the routine type {name!r}: {exc}"
                raise self.error(msg) from exc

    return RoutineTable


def setup(app: Sphinx) -> dict[str, Any]:
    """
    Register the directives.
    """
    app.setup_extension("sphinx.ext.graphviz")
    app.add_directive("flow", FlowDirective)
    app.add_directive("lifecycle", LifecycleDirective)
    app.add_directive("routine-slots", _routine_directive(_slots))
    app.add_directive("routine-events", _routine_directive(_events))
    app.add_directive("routine-config", _routine_directive(_config))
    return {"parallel_read_safe": False, "parallel_write_safe": True}
