"""
A small, safe expression language for conditions: a whitelist of Python expression syntax.

An expression is parsed with :mod:`ast` and every node is checked against a whitelist
before anything runs; the checked tree is then interpreted by this module (Python's
``eval`` is never called). What is allowed:

* literals (numbers, strings, bytes, ``True``/``False``/``None``, lists, tuples, sets, dicts);
* the names given by the caller (the routers give ``data``, ``config`` and ``stats``) and a
  few safe built-in functions (:data:`SAFE_FUNCTIONS`, for example ``isinstance``, ``len``);
* boolean logic, comparisons (including ``in`` and ``is``), arithmetic, conditional
  expressions, subscripts and slices;
* method calls from a short list on built-in values only, such as ``data.get("k")``,
  ``s.lower()`` or ``d.items()`` (:data:`SAFE_METHODS`);
* list comprehensions and generator expressions (``any(x > 1 for x in data)``).

Everything else is rejected with :class:`~routilux_stdlib.exceptions.ExpressionError`:
attribute reads (so no ``().__class__.__base__.__subclasses__()`` walks), any name that
starts with an underscore, lambdas, f-strings, the walrus operator, starred arguments,
calls of anything but the listed functions and methods.

Work is bounded, so that an expression (which may come from a loaded flow document) cannot
hang the worker that evaluates it:

* sizes: repetition (``'a' * n``, ``[x] * n``) may build at most ``MAX_SIZE`` (100,000)
  items, counting nested items; an integer ``**`` or ``*`` may build at most ``MAX_SIZE``
  bits (about 30,000 decimal digits), checked from an estimate before computing; exponents
  are at most ``MAX_EXPONENT``; a comprehension yields at most ``MAX_SIZE`` items; a
  float overflow becomes an :class:`~routilux_stdlib.exceptions.ExpressionError`;
* time: each evaluation has a budget of :data:`MAX_STEPS` steps. Every syntax node
  evaluated and every comprehension iteration is a step, and operations whose cost grows
  with their operands are charged for their size (a call of ``sorted``, ``sum``, ``str``...
  for the items of its arguments, a string method for the length of the string, ``in`` for
  the length of the container, big-integer arithmetic for the size of the numbers).

Going over a limit raises :class:`~routilux_stdlib.exceptions.ExpressionError` at run time
(a router treats that, like any run-time error, as "no match").
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Mapping
from typing import Any

from ._expr_interpreter import Interpreter
from ._expr_rules import MAX_STEPS, SAFE_FUNCTIONS, SAFE_METHODS, Checker
from .exceptions import ExpressionError


__all__ = ["MAX_STEPS", "SAFE_FUNCTIONS", "SAFE_METHODS", "check_expression", "evaluate"]


@functools.lru_cache(maxsize=512)
def _parse(text: str, names: frozenset[str]) -> ast.Expression:
    if not isinstance(text, str):
        raise ExpressionError(repr(text), "an expression must be a string")
    too_deep = "the expression is nested too deeply"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(text, f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):
        # CPython's parser gives up on deep nesting (``"not " * 100000``) with a
        # MemoryError ("parser stack overflow") or, building the tree, a RecursionError.
        raise ExpressionError(text, too_deep) from None
    except ValueError as exc:  # a NUL character, on the Pythons that do not say SyntaxError
        raise ExpressionError(text, f"syntax error: {exc}") from None
    try:
        Checker(text, names).check(tree, frozenset())
    except RecursionError:
        raise ExpressionError(text, too_deep) from None
    return tree


def check_expression(text: str, names: Iterable[str] = ("data", "config", "stats")) -> None:
    """
    Check that ``text`` is an allowed expression over ``names``, without running it.

    Raises:
        ExpressionError: The expression does not parse or uses forbidden syntax.
    """
    _parse(text, frozenset(names))


def evaluate(text: str, names: Mapping[str, Any]) -> Any:
    """
    Check ``text`` (see :func:`check_expression`) and evaluate it with ``names`` bound.

    Raises:
        ExpressionError: The expression is not allowed, it would build a value that is
            too large (an ``OverflowError`` included), or it exceeds :data:`MAX_STEPS`.
        Exception: Whatever a valid expression raises while it runs (``KeyError``,
            ``TypeError``...).
    """
    tree = _parse(text, frozenset(names))
    try:
        return Interpreter(text, dict(names)).run(tree.body)
    except OverflowError as exc:
        raise ExpressionError(text, f"a value is too large ({exc})") from None
    except RecursionError:
        raise ExpressionError(text, "the expression is nested too deeply") from None
