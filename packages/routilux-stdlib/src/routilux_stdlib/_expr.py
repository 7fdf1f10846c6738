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
calls of anything but the listed functions and methods. Sizes are bounded: sequence
repetition and powers that would build huge values are refused.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from .exceptions import ExpressionError


__all__ = ["SAFE_FUNCTIONS", "SAFE_METHODS", "check_expression", "evaluate"]

SAFE_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "abs": abs,
    "all": all,
    "any": any,
    "bool": bool,
    "dict": dict,
    "float": float,
    "int": int,
    "isinstance": isinstance,
    "len": len,
    "list": list,
    "max": max,
    "min": min,
    "round": round,
    "set": set,
    "sorted": sorted,
    "str": str,
    "sum": sum,
    "tuple": tuple,
}
"""The functions an expression may call by name."""

_STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "isalnum",
        "isalpha",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "isupper",
        "lower",
        "lstrip",
        "removeprefix",
        "removesuffix",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "title",
        "upper",
    }
)
_SEQ_METHODS = frozenset({"count", "index"})
_DICT_METHODS = frozenset({"get", "keys", "values", "items"})

SAFE_METHODS: Final[Mapping[type, frozenset[str]]] = {
    dict: _DICT_METHODS,
    str: _STR_METHODS,
    list: _SEQ_METHODS,
    tuple: _SEQ_METHODS,
    set: frozenset({"issubset", "issuperset", "isdisjoint"}),
    frozenset: frozenset({"issubset", "issuperset", "isdisjoint"}),
}
"""The methods an expression may call, by the built-in type of the receiver."""

_ALL_METHODS = frozenset().union(*SAFE_METHODS.values())

#: Largest sequence an expression may build by repetition, and largest exponent.
_MAX_SIZE: Final = 100_000
_MAX_EXPONENT: Final = 1_000

_BINOPS: Final[Mapping[type[ast.operator], Callable[[Any, Any], Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
}
_UNARYOPS: Final[Mapping[type[ast.unaryop], Callable[[Any], Any]]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
}
_CMPOPS: Final[Mapping[type[ast.cmpop], Callable[[Any, Any], Any]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

_REJECTED: Final[Mapping[type[ast.AST], str]] = {
    ast.Lambda: "lambdas are not allowed",
    ast.NamedExpr: "assignment expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.Starred: "starred arguments are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}


class _Checker:
    """
    Walks a parsed expression and raises ExpressionError on the first forbidden node.
    """

    def __init__(self, text: str, names: frozenset[str]) -> None:
        self.text = text
        self.names = names

    def fail(self, reason: str) -> ExpressionError:
        return ExpressionError(self.text, reason)

    def check(self, node: ast.AST, scope: frozenset[str]) -> None:
        rejected = _REJECTED.get(type(node))
        if rejected is not None:
            raise self.fail(rejected)
        method = getattr(self, f"check_{type(node).__name__}", None)
        if method is None:
            raise self.fail(f"{type(node).__name__} syntax is not allowed")
        method(node, scope)

    def check_all(self, nodes: Iterable[ast.AST | None], scope: frozenset[str]) -> None:
        for n in nodes:
            if n is not None:
                self.check(n, scope)

    def check_Expression(self, node: ast.Expression, scope: frozenset[str]) -> None:
        self.check(node.body, scope)

    def check_Constant(self, node: ast.Constant, scope: frozenset[str]) -> None:
        if node.value is Ellipsis:
            raise self.fail("'...' is not allowed")

    def check_Name(self, node: ast.Name, scope: frozenset[str]) -> None:
        name = node.id
        if name.startswith("_"):
            raise self.fail(f"names starting with '_' are not allowed ({name!r})")
        if name not in scope and name not in self.names and name not in SAFE_FUNCTIONS:
            known = ", ".join(sorted(self.names))
            raise self.fail(f"unknown name {name!r} (known names: {known} and safe functions)")

    def check_Attribute(self, node: ast.Attribute, scope: frozenset[str]) -> None:
        if node.attr.startswith("_"):
            raise self.fail(f"access to {node.attr!r} is not allowed (no underscore attributes)")
        raise self.fail(
            f"attribute access .{node.attr} is not allowed; only method calls such as "
            ".get(...) on built-in values are"
        )

    def check_Call(self, node: ast.Call, scope: frozenset[str]) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            if func.id not in SAFE_FUNCTIONS or func.id in scope:
                raise self.fail(f"calling {func.id!r} is not allowed")
        elif isinstance(func, ast.Attribute):
            if func.attr.startswith("_"):
                raise self.fail(f"access to {func.attr!r} is not allowed (underscore attribute)")
            if func.attr not in _ALL_METHODS:
                raise self.fail(f"method .{func.attr}() is not allowed")
            self.check(func.value, scope)
        else:
            raise self.fail("only safe functions and methods can be called")
        self.check_all(node.args, scope)
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail("'**' arguments are not allowed")
            self.check(kw.value, scope)

    def check_BoolOp(self, node: ast.BoolOp, scope: frozenset[str]) -> None:
        self.check_all(node.values, scope)

    def check_BinOp(self, node: ast.BinOp, scope: frozenset[str]) -> None:
        if type(node.op) not in _BINOPS:
            raise self.fail(f"operator {type(node.op).__name__} is not allowed")
        self.check_all((node.left, node.right), scope)

    def check_UnaryOp(self, node: ast.UnaryOp, scope: frozenset[str]) -> None:
        self.check(node.operand, scope)

    def check_Compare(self, node: ast.Compare, scope: frozenset[str]) -> None:
        self.check_all([node.left, *node.comparators], scope)

    def check_IfExp(self, node: ast.IfExp, scope: frozenset[str]) -> None:
        self.check_all((node.test, node.body, node.orelse), scope)

    def check_Subscript(self, node: ast.Subscript, scope: frozenset[str]) -> None:
        self.check_all((node.value, node.slice), scope)

    def check_Slice(self, node: ast.Slice, scope: frozenset[str]) -> None:
        self.check_all((node.lower, node.upper, node.step), scope)

    def check_List(self, node: ast.List, scope: frozenset[str]) -> None:
        self.check_all(node.elts, scope)

    check_Tuple = check_List
    check_Set = check_List

    def check_Dict(self, node: ast.Dict, scope: frozenset[str]) -> None:
        if any(k is None for k in node.keys):
            raise self.fail("'**' in dict literals is not allowed")
        self.check_all([*node.keys, *node.values], scope)

    def check_ListComp(self, node: ast.ListComp, scope: frozenset[str]) -> None:
        for gen in node.generators:
            if gen.is_async:
                raise self.fail("async comprehensions are not allowed")
            self.check(gen.iter, scope)
            scope = scope | self.targets(gen.target)
            self.check_all(gen.ifs, scope)
        self.check(node.elt, scope)

    check_GeneratorExp = check_ListComp

    def targets(self, target: ast.AST) -> frozenset[str]:
        if isinstance(target, ast.Name):
            if target.id.startswith("_"):
                raise self.fail(f"names starting with '_' are not allowed ({target.id!r})")
            return frozenset({target.id})
        if isinstance(target, ast.Tuple):
            out: frozenset[str] = frozenset()
            for elt in target.elts:
                out |= self.targets(elt)
            return out
        raise self.fail("comprehension targets must be plain names")


@functools.lru_cache(maxsize=512)
def _parse(text: str, names: frozenset[str]) -> ast.Expression:
    if not isinstance(text, str):
        raise ExpressionError(repr(text), "an expression must be a string")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(text, f"syntax error: {exc.msg}") from None
    _Checker(text, names).check(tree, frozenset())
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
        ExpressionError: The expression is not allowed, or it would build a value that is
            too large.
        Exception: Whatever a valid expression raises while it runs (``KeyError``,
            ``TypeError``...).
    """
    tree = _parse(text, frozenset(names))
    return _Interpreter(text, dict(names)).run(tree.body)


class _Interpreter:
    """
    Evaluates a checked tree.
    """

    def __init__(self, text: str, env: dict[str, Any]) -> None:
        self.text = text
        self.env = env

    def run(self, node: ast.AST) -> Any:
        return getattr(self, f"eval_{type(node).__name__}")(node)

    def eval_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def eval_Name(self, node: ast.Name) -> Any:
        if node.id in self.env:
            return self.env[node.id]
        return SAFE_FUNCTIONS[node.id]

    def eval_BoolOp(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        value: Any = None
        for sub in node.values:
            value = self.run(sub)
            if bool(value) is not is_and:
                return value
        return value

    def eval_BinOp(self, node: ast.BinOp) -> Any:
        left = self.run(node.left)
        right = self.run(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, int) and abs(right) > _MAX_EXPONENT:
            raise ExpressionError(self.text, f"exponent {right} is too large")
        if isinstance(node.op, ast.Mult):
            self._check_repeat(left, right)
            self._check_repeat(right, left)
        return _BINOPS[type(node.op)](left, right)

    def _check_repeat(self, seq: Any, times: Any) -> None:
        too_big = (
            isinstance(seq, (str, bytes, list, tuple))
            and isinstance(times, int)
            and (len(seq) * times > _MAX_SIZE)
        )
        if too_big:
            raise ExpressionError(self.text, "repetition would build a value that is too large")

    def eval_UnaryOp(self, node: ast.UnaryOp) -> Any:
        return _UNARYOPS[type(node.op)](self.run(node.operand))

    def eval_Compare(self, node: ast.Compare) -> Any:
        left = self.run(node.left)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = self.run(comp)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True

    def eval_IfExp(self, node: ast.IfExp) -> Any:
        return self.run(node.body) if self.run(node.test) else self.run(node.orelse)

    def eval_Subscript(self, node: ast.Subscript) -> Any:
        return self.run(node.value)[self.run(node.slice)]

    def eval_Slice(self, node: ast.Slice) -> Any:
        parts = (node.lower, node.upper, node.step)
        lower, upper, step = (None if p is None else self.run(p) for p in parts)
        return slice(lower, upper, step)

    def eval_List(self, node: ast.List) -> Any:
        return [self.run(e) for e in node.elts]

    def eval_Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self.run(e) for e in node.elts)

    def eval_Set(self, node: ast.Set) -> Any:
        return {self.run(e) for e in node.elts}

    def eval_Dict(self, node: ast.Dict) -> Any:
        return {
            self.run(k): self.run(v)
            for k, v in zip(node.keys, node.values, strict=True)
            if k is not None
        }

    def eval_Call(self, node: ast.Call) -> Any:
        args = [self.run(a) for a in node.args]
        kwargs = {kw.arg: self.run(kw.value) for kw in node.keywords if kw.arg is not None}
        func = node.func
        if isinstance(func, ast.Name):
            return SAFE_FUNCTIONS[func.id](*args, **kwargs)
        assert isinstance(func, ast.Attribute)  # guaranteed by the checker
        receiver = self.run(func.value)
        for kind, methods in SAFE_METHODS.items():
            if isinstance(receiver, kind) and func.attr in methods:
                return getattr(receiver, func.attr)(*args, **kwargs)
        raise ExpressionError(
            self.text, f"method .{func.attr}() is not allowed on {type(receiver).__name__}"
        )

    def eval_ListComp(self, node: ast.ListComp | ast.GeneratorExp) -> Any:
        out: list[Any] = []
        self._comprehend(node, 0, out)
        return out

    eval_GeneratorExp = eval_ListComp

    def _comprehend(self, node: ast.ListComp | ast.GeneratorExp, i: int, out: list[Any]) -> None:
        if i == len(node.generators):
            out.append(self.run(node.elt))
            if len(out) > _MAX_SIZE:
                raise ExpressionError(self.text, "comprehension builds a value that is too large")
            return
        gen = node.generators[i]
        saved = dict(self.env)
        try:
            for item in self.run(gen.iter):
                self._bind(gen.target, item)
                if all(self.run(cond) for cond in gen.ifs):
                    self._comprehend(node, i + 1, out)
        finally:
            self.env = saved

    def _bind(self, target: ast.AST, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
            return
        assert isinstance(target, ast.Tuple)  # guaranteed by the checker
        values = list(value)
        if len(values) != len(target.elts):
            msg = f"cannot unpack {len(values)} values into {len(target.elts)} names"
            raise ValueError(msg)
        for elt, v in zip(target.elts, values, strict=True):
            self._bind(elt, v)
