"""
The safe expression evaluator: what it computes, and what it refuses.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux.exceptions import RoutiluxError
from routilux_stdlib import ExpressionError
from routilux_stdlib._expr import check_expression, evaluate


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
