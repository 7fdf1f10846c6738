"""
routilux.flow.dependency: the dependency graph of a flow and the routines ready to run.
"""

from __future__ import annotations

from routilux import Connection, Flow, Routine
from routilux.flow.dependency import build_dependency_graph, get_ready_routines


class Node(Routine):
    """A routine with one input slot and one output event."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input")
        self.define_event("out")


def flow_of(*ids: str, edges: list[tuple[str, str]]) -> Flow:
    flow = Flow()
    for routine_id in ids:
        flow.add_routine(Node(), routine_id)
    for source, target in edges:
        flow.connect(source, "out", target, "input")
    return flow


class TestBuildDependencyGraph:
    def test_chain(self) -> None:
        """In r1 -> r2 -> r3 each routine depends on its upstream source; r1 on nothing."""
        flow = flow_of("r1", "r2", "r3", edges=[("r1", "r2"), ("r2", "r3")])
        graph = build_dependency_graph(flow.routines, flow.connections)
        assert {"r1": set(), "r2": {"r1"}, "r3": {"r2"}} == graph

    def test_every_routine_has_a_key(self) -> None:
        """A routine with no connection at all still appears, with no dependencies."""
        flow = flow_of("a", "b", "alone", edges=[("a", "b")])
        graph = build_dependency_graph(flow.routines, flow.connections)
        assert ["a", "b", "alone"] == list(graph)
        assert set() == graph["alone"]

    def test_self_connection_ignored(self) -> None:
        """A routine connected to itself does not depend on itself."""
        flow = flow_of("loop", "next", edges=[("loop", "loop"), ("loop", "next")])
        graph = build_dependency_graph(flow.routines, flow.connections)
        assert {"loop": set(), "next": {"loop"}} == graph

    def test_fan_in(self) -> None:
        """A routine fed by several sources depends on all of them."""
        flow = flow_of("a", "b", "c", "sink", edges=[("a", "sink"), ("b", "sink"), ("c", "sink")])
        graph = build_dependency_graph(flow.routines, flow.connections)
        assert {"a", "b", "c"} == graph["sink"]

    def test_fan_out(self) -> None:
        """Routines fed by one source each depend on it alone."""
        flow = flow_of("src", "x", "y", edges=[("src", "x"), ("src", "y")])
        graph = build_dependency_graph(flow.routines, flow.connections)
        assert {"src": set(), "x": {"src"}, "y": {"src"}} == graph

    def test_ids_resolved_by_routine_identity(self) -> None:
        """
        The ids are the keys of ``routines``, found from the routine objects that own the
        connection's ends; connections to routines outside ``routines`` add nothing.
        """
        first, second, outsider = Node(), Node(), Node()
        connections = [
            Connection(first.get_event("out"), second.get_slot("input")),
            Connection(outsider.get_event("out"), second.get_slot("input")),
            Connection(second.get_event("out"), outsider.get_slot("input")),
        ]
        graph = build_dependency_graph({"up": first, "down": second}, connections)
        assert {"up": set(), "down": {"up"}} == graph

    def test_empty(self) -> None:
        """No routines give an empty graph."""
        assert {} == build_dependency_graph({}, [])


class TestGetReadyRoutines:
    CHAIN = {"r1": set(), "r2": {"r1"}, "r3": {"r2"}}

    def test_chain_advances_one_step_at_a_time(self) -> None:
        """A routine is ready once all its dependencies completed."""
        assert ["r1"] == get_ready_routines(set(), self.CHAIN, set())
        assert ["r2"] == get_ready_routines({"r1"}, self.CHAIN, set())
        assert ["r3"] == get_ready_routines({"r1", "r2"}, self.CHAIN, set())
        assert [] == get_ready_routines({"r1", "r2", "r3"}, self.CHAIN, set())

    def test_running_and_completed_excluded(self) -> None:
        """Routines already running or completed are not ready again."""
        assert [] == get_ready_routines(set(), self.CHAIN, {"r1"})
        assert [] == get_ready_routines({"r1"}, self.CHAIN, {"r2"})

    def test_fan_in_waits_for_every_source(self) -> None:
        """A routine with several dependencies waits until each of them completed."""
        graph = {"a": set(), "b": set(), "sink": {"a", "b"}}
        assert ["b"] == get_ready_routines({"a"}, graph, set())
        assert [] == get_ready_routines({"a"}, graph, {"b"})
        assert ["sink"] == get_ready_routines({"a", "b"}, graph, set())

    def test_graph_order(self) -> None:
        """The ready ids come in the order of the graph's keys."""
        graph = {"z": set(), "m": set(), "a": set(), "after": {"z"}}
        assert ["z", "m", "a"] == get_ready_routines(set(), graph, set())
        assert ["m", "a", "after"] == get_ready_routines({"z"}, graph, set())

    def test_from_flow(self) -> None:
        """The two work together on a built flow."""
        flow = flow_of(
            "src",
            "left",
            "right",
            "join",
            edges=[
                ("src", "left"),
                ("src", "right"),
                ("left", "join"),
                ("right", "join"),
            ],
        )
        graph = build_dependency_graph(flow.routines, flow.connections)
        assert ["left", "right"] == get_ready_routines({"src"}, graph, set())
        assert ["join"] == get_ready_routines({"src", "left", "right"}, graph, set())

    def test_flow_helpers_delegate(self) -> None:
        """Flow._build_dependency_graph and Flow._get_ready_routines (SPEC 16) give the same."""
        flow = flow_of("r1", "r2", "r3", edges=[("r1", "r2"), ("r2", "r3")])
        graph = flow._build_dependency_graph()
        assert graph == build_dependency_graph(flow.routines, flow.connections)
        assert "r1" in graph["r2"] and "r2" in graph["r3"] and graph["r1"] == set()
        assert ["r2"] == flow._get_ready_routines({"r1"}, graph, set())
        assert [] == flow._get_ready_routines({"r1"}, graph, {"r2"})
