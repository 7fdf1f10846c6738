"""
What an expression may use and how much work it may do: the safe functions and methods, the
operators, the rejected syntax, the limits, and the checker that walks a parsed expression
(see :mod:`routilux_stdlib._expr`).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from .exceptions import ExpressionError


__all__ = [
    "BINOPS",
    "CMPOPS",
    "MAX_EXPONENT",
    "MAX_SIZE",
    "MAX_STEPS",
    "SAFE_FUNCTIONS",
    "SAFE_METHODS",
    "UNARYOPS",
    "Checker",
]

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

#: Largest value an expression may build by repetition (items, nested items included) or
#: by integer ``**`` and ``*`` (bits), longest comprehension, and largest exponent.
MAX_SIZE: Final = 100_000
MAX_EXPONENT: Final = 1_000

MAX_STEPS: Final = 100_000
"""
The step budget of one evaluation. Every node evaluated and every comprehension iteration
is one step, and operations that scale with their operands cost their size: items (nested
ones included) of the arguments of a call, of a string method's receiver, of the container
of ``in``; one step per 64 characters of a string or 64 bits of an integer (big-integer
``*``, ``/``, ``//``, ``%`` and ``**`` cost more, as they grow faster than their operands).
That is about a tenth of a second of work at most. A real condition uses a few dozen steps,
or about five per item when it loops over a list (so a loop over up to some 15,000 items).
"""


BINOPS: Final[Mapping[type[ast.operator], Callable[[Any, Any], Any]]] = {
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
UNARYOPS: Final[Mapping[type[ast.unaryop], Callable[[Any], Any]]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
}
CMPOPS: Final[Mapping[type[ast.cmpop], Callable[[Any, Any], Any]]] = {
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


class Checker:
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
        if type(node.op) not in BINOPS:
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
