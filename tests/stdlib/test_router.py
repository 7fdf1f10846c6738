"""
ConditionalRouter: condition kinds, priorities, stats, declared routes, serialization.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux.exceptions import DeserializationError, EventNotFoundError, SerializationError
from routilux_stdlib import (
    ConditionalRouter,
    ExpressionError,
    register_predicate,
    unregister_predicate,
)

from .conftest import build_flow, capture, received, roundtrip, run


def is_urgent(data: Any) -> bool:
    return bool(data.get("priority") == "high")


def over_threshold(data: Any, config: dict[str, Any]) -> bool:
    return bool(data["n"] > config["threshold"])


@pytest.fixture(autouse=True)
def predicates() -> Any:
    register_predicate(is_urgent)
    register_predicate(over_threshold, name="over")
    yield
    unregister_predicate("is_urgent")
    unregister_predicate("over")


def route(routes: list[tuple[str, Any]], data: Any, **config: Any) -> list[tuple[str, Any]]:
    r = ConditionalRouter()
    for name, cond in routes:
        r.add_route(name, cond)
    r.set_config(**config)
    got = capture(r)
    r.input_slot.receive({"data": data})
    return [(p["route"], ev) for ev, ps in got.items() for p in ps]


class TestConditions:
    @pytest.mark.parametrize(
        ("condition", "data", "matched"),
        [
            ("is_urgent", {"priority": "high"}, True),
            ("is_urgent", {"priority": "low"}, False),
            ("over", {"n": 5}, True),
            ("data.get('priority') == 'high'", {"priority": "high"}, True),
            ("data['n'] > config['threshold']", {"n": 2}, False),
            ("data['missing'] > 1", {"n": 2}, False),
            ({"priority": "high"}, {"priority": "high", "x": 1}, True),
            ({"priority": "high"}, {"x": 1}, False),
            ({"n": lambda v: v > 1}, {"n": 2}, True),
            ({"n": 1}, "not a dict", False),
            (lambda data: data["n"] == 2, {"n": 2}, True),
            (lambda data, config: data["n"] > config["threshold"], {"n": 9}, True),
            (lambda data, stats: stats == {}, {"n": 1}, True),
            (lambda item, config: item["n"] > config["threshold"], {"n": 9}, True),
            (lambda config, row: row["n"] > config["threshold"], {"n": 9}, True),
            (lambda a, b: b["threshold"] == 3, {"n": 1}, True),
            (lambda data: 1 / 0, {"n": 1}, False),
            # Dispatch by parameter names, then one more try with f(data).
            (lambda x, limit=5: x.get("v", 0) > limit, {"v": 9}, True),
            (lambda x, limit=5: x.get("v", 0) > limit, {"v": 1}, False),
            (lambda a, b=None, c=None: b is None, {"n": 1}, True),
            (lambda data, stats=None, extra=1: stats is None, {"n": 1}, True),
            (lambda data, config, stats: config["threshold"] == 3 and stats == {}, {}, True),
            (lambda x, y: y["missing"], {"n": 1}, False),
        ],
    )
    def test_condition_kinds(self, condition: Any, data: Any, matched: bool) -> None:
        """
        Predicate names, expressions, dict field matching, callables; errors do not match.
        """
        got = route([("hit", condition)], data, threshold=3)
        assert ([("hit", "hit")] if matched else [("unmatched", "output")]) == got

    def test_callable_retried_once_with_data_only(self) -> None:
        """
        When the dispatched call raises, the condition is called once more as f(data); a
        failure of that call is no match.
        """
        calls: list[tuple[Any, ...]] = []

        def flaky(data: Any, limit: Any = 5) -> bool:
            calls.append((data, limit))
            raise ValueError("no")

        r = ConditionalRouter()
        r.add_route("a", flaky)
        assert [] == r.match({"v": 9})
        assert [({"v": 9}, r.config()), ({"v": 9}, 5)] == calls

    @pytest.mark.parametrize(
        ("condition", "data"),
        [
            ("data.get('p') == 'high'", "a string"),  # .get() is refused on a str
            ("data * 'ab' == ''", 10**6),  # repetition too large
            ("data ** 2000 > 0", 2),  # exponent too large
            ("data['k'] > 1", {}),  # an ordinary KeyError
        ],
    )
    def test_evaluation_error_is_no_match(
        self, condition: str, data: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        A declared expression that fails while it is evaluated, also by a refusal of the
        safe evaluator, does not match: later routes and the default route still apply,
        and the error is logged at debug level.
        """
        with caplog.at_level("DEBUG", logger="routilux_stdlib"):
            assert [("next", "next")] == route([("hit", condition), ("next", "True")], data)
            assert [("fallback", "fallback")] == route(
                [("hit", condition)], data, default_route="fallback"
            )
            assert [("unmatched", "output")] == route([("hit", condition)], data)
        assert any(condition in rec.getMessage() for rec in caplog.records)

    def test_unsafe_expression_rejected_when_declared(self) -> None:
        """
        An attribute walk is refused by add_route and by set_config(routes=...).
        """
        r = ConditionalRouter()
        with pytest.raises(ExpressionError, match="__class__"):
            r.add_route("evil", "().__class__.__base__.__subclasses__()")
        with pytest.raises(ExpressionError, match="__import__"):
            r.set_config(routes=[("evil", "__import__('os')")])
        assert r.get_event("evil") is None

    @pytest.mark.parametrize("condition", [None, 5])
    def test_condition_of_other_type_rejected_when_declared(self, condition: Any) -> None:
        """
        A condition that is not a string, dict or callable is a TypeError naming it, from
        add_route and from set_config(routes=...); no event is declared.
        """
        r = ConditionalRouter()
        with pytest.raises(TypeError, match=f"got {condition!r}"):
            r.add_route("odd", condition)
        with pytest.raises(TypeError, match=f"got {condition!r}"):
            r.set_config(routes=[("odd", condition)])
        assert r.get_event("odd") is None
        assert [] == r.get_config("routes")


class TestRouting:
    @pytest.mark.parametrize(
        ("priority", "expected"),
        [("first_match", [("a", "a")]), ("all", [("a", "a"), ("b", "b")])],
    )
    def test_route_priority(self, priority: str, expected: list[tuple[str, str]]) -> None:
        """
        first_match stops at the first match; anything else emits every match in order.
        """
        got = route(
            [("a", "data > 1"), ("b", "data > 0"), ("c", "data > 5")], 3, route_priority=priority
        )
        assert expected == got

    def test_default_route(self) -> None:
        """
        default_route gets unmatched data; it is declared by set_config.
        """
        assert [("fallback", "fallback")] == route(
            [("a", "data > 10")], 1, default_route="fallback"
        )

    def test_routes_from_config_declare_events(self) -> None:
        """
        set_config(routes=...) declares the route events (at definition time).
        """
        r = ConditionalRouter()
        r.set_config(routes=[("x", "data == 1"), ["y", {"k": 1}]])
        assert {"output", "x", "y"} == set(r._events)

    def test_undeclared_route_is_recorded_error(self, strategy: str) -> None:
        """
        A route with no event (config changed behind the router's back) is an error of the
        activation; no event is defined at run time.
        """
        r = ConditionalRouter()
        r._config["routes"] = [("ghost", "True")]
        flow = build_flow(r, "input", strategy=strategy)
        (job,) = run(flow, {"data": 1})
        assert r.get_event("ghost") is None
        errors = [rec for rec in job.execution_history if rec.event_name == "error"]
        assert errors and "ghost" in str(errors[0].data)
        with pytest.raises(EventNotFoundError):
            r._handle_input(data=1)

    def test_stats_is_the_job_shared_data(self, strategy: str) -> None:
        """
        stats is a snapshot of the job's shared data (and {} outside a job).
        """
        r = ConditionalRouter()
        r.add_route("vip", "stats.get('tier') == 'gold'")
        flow = build_flow(r, "input", strategy=strategy)
        from routilux import JobState

        js = JobState(flow_id=flow.flow_id)
        js.update_shared_data("tier", "gold")
        flow.execute("entry", {"data": 1}, job_state=js)
        flow.execute("entry", {"data": 2})
        got = received(flow)
        assert [1] == [p["data"] for p in got["vip"]]
        assert [2] == [p["data"] for p in got["output"]]
        flow.shutdown()


class TestSerialization:
    def test_named_and_expression_routes_round_trip(self, strategy: str) -> None:
        """
        Predicate names, expressions and dicts survive a Flow round trip and route the same.
        """
        r = ConditionalRouter()
        r.add_route("urgent", is_urgent)
        r.add_route("big", "data.get('n', 0) > 10")
        r.add_route("blue", {"color": "blue"})
        r.set_config(default_route="rest")
        flow = roundtrip(build_flow(r, "input", strategy=strategy))
        flow.set_execution_strategy(strategy)
        run(
            flow,
            {"data": {"priority": "high"}},
            {"data": {"n": 11}},
            {"data": {"color": "blue"}},
            {"data": {}},
        )
        got = received(flow)
        assert {k: len(v) for k, v in got.items()} == {
            "output": 0,
            "urgent": 1,
            "big": 1,
            "blue": 1,
            "rest": 1,
        }
        config = flow.routines["r"].config()
        assert ["urgent", "is_urgent"] == list(config["routes"][0])
        flow.shutdown()

    @pytest.mark.parametrize(
        ("condition", "where"),
        [(lambda data: True, "[1][1]"), ({"n": lambda v: v > 1}, "[1][1].n")],
    )
    def test_lambda_raises_at_serialize_time_with_path(self, condition: Any, where: str) -> None:
        """
        A lambda condition, or a lambda in a dict condition, is a SerializationError whose
        path is the value's path in the document and whose message names the route.
        """
        r = ConditionalRouter()
        r.add_route("fine", "True")
        r.add_route("sneaky", condition)
        with pytest.raises(SerializationError, match="route 'sneaky'") as info:
            build_flow(r, "input").serialize()
        assert f"routines.r.config.routes{where}" == info.value.path
        with pytest.raises(SerializationError) as info:
            r.serialize()
        assert f"config.routes{where}" == info.value.path

    def test_module_level_function_round_trips_by_callable_name(self) -> None:
        """
        An unregistered module-level function is written by the core's callable name.
        """
        r = ConditionalRouter()
        r.add_route("f", over_threshold)
        r.set_config(threshold=1)
        flow = roundtrip(build_flow(r, "input"))
        run(flow, {"data": {"n": 2}})
        assert 1 == len(received(flow)["f"])

    def test_unsafe_expression_in_document_rejected_on_load(self) -> None:
        """
        A tampered document with an attribute walk fails to load with DeserializationError.
        """
        r = ConditionalRouter()
        r.add_route("ok", "True")
        doc = build_flow(r, "input").serialize()
        doc["routines"]["r"]["config"]["routes"] = [["ok", "().__class__"]]
        from routilux import Flow

        with pytest.raises(DeserializationError, match="__class__"):
            Flow().deserialize(doc)


class TestHostileConditions:
    @pytest.mark.parametrize(
        "condition",
        ["not " * 100_000 + "True", "-" * 100_000 + "1", "1+" * 100_000 + "1"],
        ids=["not-100000", "minus-100000", "plus-100000"],
    )
    def test_add_route_raises_expression_error(self, condition: str) -> None:
        """An expression too big for the parser is an ExpressionError with a short message."""
        r = ConditionalRouter()
        with pytest.raises(ExpressionError) as info:
            r.add_route("deep", condition)
        assert condition == info.value.expression
        assert len(str(info.value)) < 500
        assert r.get_event("deep") is None

    def test_document_names_the_route(self) -> None:
        """In a document, the error's path is the condition's, naming the route by index."""
        r = ConditionalRouter()
        r.add_route("ok", "True")
        r.add_route("also", "False")
        doc = build_flow(r, "input").serialize()
        doc["routines"]["r"]["config"]["routes"][1][1] = "not " * 100_000 + "True"
        from routilux import Flow

        with pytest.raises(DeserializationError) as info:
            Flow().deserialize(doc)
        assert "routines.r.config.routes[1][1]" == info.value.path

    @pytest.mark.parametrize(
        ("condition", "reason"),
        [
            ("().__class__", "access to '__class__' is not allowed"),
            ("a\x00", "syntax error: "),
        ],
        ids=["attribute-walk", "nul-character"],
    )
    def test_reason_is_given_once(self, condition: str, reason: str) -> None:
        """The error's reason is the checker's or the parser's, not wrapped twice."""
        with pytest.raises(ExpressionError) as info:
            ConditionalRouter().add_route("r", condition)
        assert info.value.reason.startswith(reason)
        assert 1 == str(info.value).count("unsafe or invalid expression")
