"""
The safe expression evaluator: what it computes, and what it refuses.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux.exceptions import RoutiluxError
from routilux_stdlib import ConditionalRouter, ExpressionError
from routilux_stdlib._expr import MAX_STEPS, check_expression, evaluate

from .conftest import capture


NAMES = {
    "data": {"p": "high", "n": 4, "tags": ["a", "b"], "s": " Hi "},
    "config": {"threshold": 3},
    "stats": {"count": 2},
}


class TestAllowed:
    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("data['n'] > config['threshold']", True),
            ("data.get('p') == 'high'", True),
            ("data.get('missing', 0) + 1", 1),
            ("stats.get('count', 0) < 10", True),
            ("isinstance(data, dict) and len(data['tags']) == 2", True),
            ("'a' in data['tags'] and 'z' not in data['tags']", True),
            ("data['s'].strip().lower()", "hi"),
            ("[t.upper() for t in data['tags'] if t != 'b']", ["A"]),
            ("any(x > 3 for x in [1, 5])", True),
            ("sum(v for k, v in {'a': 1, 'b': 2}.items())", 3),
            ("1 < data['n'] <= 4", True),
            ("'yes' if data['n'] % 2 == 0 else 'no'", "yes"),
            ("data['tags'][-1:]", ["b"]),
            ("-2 ** 3", -8),
            ("data is not None", True),
            ("max([3, 1, 2]) - min(1, 2)", 2),
            ("sorted(['b', 'a'], key=len)", ["b", "a"]),
            ("{'k': (1, 2), 's': {1}}['k']", (1, 2)),
        ],
    )
    def test_evaluates(self, expr: str, expected: Any) -> None:
        """
        Whitelisted syntax evaluates like Python.
        """
        assert expected == evaluate(expr, NAMES)

    def test_runtime_errors_are_plain(self) -> None:
        """
        A valid expression that fails at run time raises the ordinary error, not ExpressionError.
        """
        with pytest.raises(KeyError):
            evaluate("data['nope']", NAMES)


class TestRejected:
    @pytest.mark.parametrize(
        ("expr", "fragment"),
        [
            ("().__class__.__base__.__subclasses__()", "__class__"),
            ("data.__class__", "__class__"),
            ("__import__('os').system('true')", "not allowed"),
            ("__import__('os')", "calling '__import__' is not allowed"),
            ("data.keys", "attribute access"),
            ("lambda: 1", "lambda"),
            ("(lambda x: x)(1)", "lambda"),
            ("f'{data}'", "f-strings"),
            ("open('/etc/passwd')", "calling 'open' is not allowed"),
            ("getattr(data, 'x')", "calling 'getattr' is not allowed"),
            ("eval('1')", "calling 'eval' is not allowed"),
            ("os.path", "attribute access"),
            ("data.pop('p')", "not allowed"),
            ("'{0.__class__}'.format(data)", "not allowed"),
            ("(x := 1)", "assignment"),
            ("len(*data)", "starred"),
            ("dict(**data)", "'**'"),
            ("[_ for _ in data]", "'_'"),
            ("import os", "syntax error"),
            ("data +", "syntax error"),
            ("data()", "not allowed"),
        ],
    )
    def test_refused_with_clear_error(self, expr: str, fragment: str) -> None:
        """
        Attribute walks, imports, dunders, lambdas and unknown calls are refused before running.
        """
        with pytest.raises(ExpressionError) as info:
            check_expression(expr)
        assert fragment in str(info.value)
        assert isinstance(info.value, RoutiluxError)
        assert isinstance(info.value, ValueError)
        assert expr == info.value.expression

    @pytest.mark.parametrize("expr", ["'a' * 10 ** 6", "[1] * 200000", "2 ** 100000"])
    def test_huge_values_refused(self, expr: str) -> None:
        """
        Repetition and powers that would build huge values are refused at run time.
        """
        with pytest.raises(ExpressionError, match="too large"):
            evaluate(expr, NAMES)

    def test_method_on_non_builtin_refused(self) -> None:
        """
        Whitelisted method names are only called on built-in receivers.
        """

        class Sneaky:
            def get(self, *_: Any) -> str:
                return "called"

        with pytest.raises(ExpressionError, match="not allowed on Sneaky"):
            evaluate("data.get('x')", {"data": Sneaky()})

    def test_method_on_type_object_refused(self) -> None:
        """
        Safe function names are types, but their attributes stay out of reach.
        """
        with pytest.raises(ExpressionError):
            evaluate("str.lower('A')", NAMES)


#: Expressions that pass declaration and, unbounded, would run for hours.
HOSTILE = [
    "((10**1000)**1000)**1000",  # a power whose result is far too large
    "[0 for a in 'a'*100000 for b in 'a'*100000 if 0]",  # 10**10 iterations, no output
]


class TestBounds:
    @pytest.mark.parametrize("expr", HOSTILE)
    def test_hostile_expressions_stop_quickly(self, expr: str) -> None:
        """
        A declared expression whose work would be unbounded stops with ExpressionError:
        the power is refused from its estimated size, the loop by the step budget.
        """
        check_expression(expr)  # passes declaration
        with pytest.raises(ExpressionError, match=r"too large|exceeded 100000 steps"):
            evaluate(expr, NAMES)

    def test_step_budget_names_its_limit(self) -> None:
        """
        Running out of steps says how many and names the limit.
        """
        with pytest.raises(ExpressionError, match=f"exceeded {MAX_STEPS} steps.*MAX_STEPS"):
            evaluate(HOSTILE[1], NAMES)

    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("len([x for x in 'ab' * 5000 if x == 'a'])", 5000),
            ("sum(1 for a in 'a' * 100 for b in 'b' * 100)", 10_000),
            ("sum([[1], [2]], [])", [1, 2]),
        ],
    )
    def test_loops_within_budget_work(self, expr: str, expected: Any) -> None:
        """
        Comprehensions of thousands of iterations stay well within the step budget.
        """
        assert expected == evaluate(expr, NAMES)

    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("(10**1000)**30 > 10**999", True),  # ~99,700 bits, just under the cap
            ("2**1000 * 2**1000 == 4**1000", True),
            ("len(str(7**1000))", 846),
            ("(10**1000) // (10**999)", 10),
            ("2.0 ** 1000 > 1e300", True),
        ],
    )
    def test_big_but_allowed_arithmetic_works(self, expr: str, expected: Any) -> None:
        """
        Big integers under the size cap, and finite floats, are computed as in Python.
        """
        assert expected == evaluate(expr, NAMES)

    @pytest.mark.parametrize(
        "expr",
        [
            "(10**1000) ** 31",  # power: bit length x exponent over the cap
            "(10**1000)**20 * (10**1000)**20",  # product: ~133,000 bits
            "[[0] * 1000] * 1000",  # repetition counts nested items
            "'%0999999999d' % 1",  # printf-style width
        ],
    )
    def test_other_blow_ups_refused(self, expr: str) -> None:
        """
        Multiplications of big integers, nested repetition and '%' formatting are refused
        before they build their value.
        """
        with pytest.raises(ExpressionError, match=r"too large|not allowed"):
            evaluate(expr, NAMES)

    @pytest.mark.parametrize("expr", ["10.0 ** 1000", "(10**400) * 1.5", "'' * 10**30"])
    def test_overflow_is_expression_error(self, expr: str) -> None:
        """
        An OverflowError while evaluating becomes ExpressionError.
        """
        with pytest.raises(ExpressionError, match="too large"):
            evaluate(expr, NAMES)

    @pytest.mark.parametrize(
        "expr",
        [
            "[sorted('a' * 100000) for a in 'a' * 100000]",  # costly calls in a loop
            "sum([[1] for a in 'a' * 20000], [])",  # quadratic sum of lists
            "[(0+0+0+0+0+0+0+0+0+0) for a in 'a' * 100000]",  # a long loop body
        ],
    )
    def test_work_inside_loops_is_counted(self, expr: str) -> None:
        """
        Steps count the size of what each operation walks, not only loop iterations.
        """
        with pytest.raises(ExpressionError, match="exceeded"):
            evaluate(expr, NAMES)

    def test_deep_nesting_is_expression_error(self) -> None:
        """
        An expression nested too deeply for the parser is refused when it is checked.
        """
        with pytest.raises(ExpressionError, match="nested too deeply"):
            check_expression("-" * 5000 + "1")

    def test_big_data_does_not_cost_steps_by_itself(self) -> None:
        """
        Reading big data, its length, a key or a prefix costs a few steps, not its size.
        """
        data = {"rows": list(range(MAX_STEPS * 2)), "text": "x" * MAX_STEPS * 10}
        names = {**NAMES, "data": data}
        assert evaluate("len(data['rows']) > 0 and not not data['rows']", names)
        assert evaluate("data['text'].startswith('x') and 'y' not in data['text']", names)
        assert not evaluate("data['rows'] == []", names)

    def test_router_takes_default_route_for_hostile_condition(self) -> None:
        """
        Through ConditionalRouter, a route whose condition runs out of budget does not
        match and the data goes to the default route.
        """
        r = ConditionalRouter()
        for i, expr in enumerate(HOSTILE):
            r.add_route(f"hostile{i}", expr)
        r.set_config(default_route="fallback")
        got = capture(r)
        r.input_slot.receive({"data": {"n": 1}})
        assert [("fallback", "fallback")] == [
            (p["route"], ev) for ev, ps in got.items() for p in ps
        ]
