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

* sizes: repetition (``'a' * n``, ``[x] * n``) may build at most ``_MAX_SIZE`` (100,000)
  items, counting nested items; an integer ``**`` or ``*`` may build at most ``_MAX_SIZE``
  bits (about 30,000 decimal digits), checked from an estimate before computing; exponents
  are at most ``_MAX_EXPONENT``; a comprehension yields at most ``_MAX_SIZE`` items; a
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
import itertools
import operator
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    KeysView,
    Mapping,
    Sized,
    ValuesView,
)
from typing import Any, Final

from .exceptions import ExpressionError


__all__ = ["MAX_STEPS", "SAFE_FUNCTIONS", "SAFE_METHODS", "check_expression", "evaluate"]

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
_MAX_SIZE: Final = 100_000
_MAX_EXPONENT: Final = 1_000

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

#: Methods whose cost does not grow with the size of the receiver.
_CONSTANT_TIME_RECEIVERS: Final = (dict,)
#: Safe functions that do not walk their arguments.
_CONSTANT_TIME_FUNCTIONS: Final = frozenset({"len", "bool", "isinstance"})
#: Integer operations whose cost grows faster than the size of their operands.
_INT_COSTLY_OPS: Final = (ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
#: Sequences whose ``in`` scans every item.
_SCANNED: Final = (str, bytes, list, tuple)
_END: Final = object()


def _size(value: Any, limit: int) -> int:
    """
    Roughly count the items of ``value``, nested items included (a string counts one per
    64 characters, an integer its 64-bit words, a built-in container or dict view 1 plus its
    items, another sized object 1 plus its length, anything else 1). Stops counting once
    the count exceeds ``limit``, so it costs at most ``limit`` steps.
    """
    total = 0
    pending: list[Any] = [iter((value,))]
    while pending and total <= limit:
        item = next(pending[-1], _END)
        if item is _END:
            pending.pop()
        elif isinstance(item, (str, bytes)):
            total += 1 + len(item) // 64
        elif isinstance(item, int):
            total += 1 + item.bit_length() // 64
        elif isinstance(item, dict):
            total += 1
            pending.append(iter(item.items()))
        elif isinstance(item, (list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)):
            total += 1
            pending.append(iter(item))
        elif isinstance(item, Sized):  # another container: its length, not walked
            total += 1 + len(item)
        else:
            total += 1
    return total


def _words(value: int) -> int:
    return 1 + value.bit_length() // 64


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
        _Checker(text, names).check(tree, frozenset())
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
        return _Interpreter(text, dict(names)).run(tree.body)
    except OverflowError as exc:
        raise ExpressionError(text, f"a value is too large ({exc})") from None
    except RecursionError:
        raise ExpressionError(text, "the expression is nested too deeply") from None


class _Interpreter:
    """
    Evaluates a checked tree, counting its steps against :data:`MAX_STEPS`.
    """

    def __init__(self, text: str, env: dict[str, Any]) -> None:
        self.text = text
        self.env = env
        self.steps = 0

    def charge(self, steps: int) -> None:
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise ExpressionError(
                self.text, f"evaluation exceeded {MAX_STEPS} steps (the MAX_STEPS limit)"
            )

    def charge_size(self, value: Any) -> int:
        """
        Charge the size of ``value`` (see :func:`_size`) and return it.
        """
        size = _size(value, MAX_STEPS - self.steps)
        self.charge(size)
        return size

    def too_large(self, what: str) -> ExpressionError:
        return ExpressionError(self.text, f"{what} would build a value that is too large")

    def run(self, node: ast.AST) -> Any:
        self.charge(1)
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
        op = node.op
        if isinstance(op, ast.Pow) and isinstance(right, int) and abs(right) > _MAX_EXPONENT:
            raise ExpressionError(self.text, f"exponent {right} is too large")
        if isinstance(left, int) and isinstance(right, int):
            self._check_int(op, left, right)
        elif isinstance(op, ast.Mult):
            self._check_repeat(left, right)
            self._check_repeat(right, left)
        elif isinstance(op, ast.Mod) and isinstance(left, (str, bytes)):
            raise ExpressionError(self.text, "'%' string formatting is not allowed")
        else:
            # Concatenation, set operations, float arithmetic: linear in the operands.
            self.charge_size(left)
            self.charge_size(right)
        return _BINOPS[type(op)](left, right)

    def _check_int(self, op: ast.operator, left: int, right: int) -> None:
        """
        Refuse an integer ``**`` or ``*`` whose result would have more than ``_MAX_SIZE``
        bits, estimated before computing it, and charge the cost of the operation.
        """
        if isinstance(op, ast.Pow):
            bits = left.bit_length() * max(right, 0)
            if bits > _MAX_SIZE:
                raise self.too_large(f"power ({bits} bits estimated)")
            self.charge((1 + bits // 64) ** 2 // 64)
            return
        if isinstance(op, ast.Mult):
            bits = left.bit_length() + right.bit_length()
            if bits > _MAX_SIZE:
                raise self.too_large(f"multiplication ({bits} bits estimated)")
        if isinstance(op, _INT_COSTLY_OPS):
            self.charge(_words(left) * _words(right) // 64)
        else:
            self.charge(_words(left) + _words(right) - 2)

    def _check_repeat(self, seq: Any, times: Any) -> None:
        """
        Refuse a repetition that would build more than ``_MAX_SIZE`` items (nested items
        included), and charge the items it builds.
        """
        if not (isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int)):
            return
        # A list or tuple counts its items (nested ones included), not itself.
        if isinstance(seq, (str, bytes)):
            if len(seq) * times > _MAX_SIZE:
                raise self.too_large("repetition")
            self.charge(max(len(seq) * times, 0) // 64)
            return
        items = self.charge_size(seq) - 1
        if items * times > _MAX_SIZE:
            raise self.too_large("repetition")
        self.charge(max(items * times, 0))

    def eval_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.run(node.operand)
        if isinstance(operand, int):
            self.charge(_words(operand) - 1)
        return _UNARYOPS[type(node.op)](operand)

    def eval_Compare(self, node: ast.Compare) -> Any:
        left = self.run(node.left)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = self.run(comp)
            self._charge_compare(op, left, right)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True

    def _charge_compare(self, op: ast.cmpop, left: Any, right: Any) -> None:
        if isinstance(op, (ast.Is, ast.IsNot)):
            return
        if isinstance(op, (ast.In, ast.NotIn)):
            # Hashing or comparing the needle, and scanning a sequence.
            self.charge_size(left)
            if isinstance(right, _SCANNED):
                self.charge_size(right)
            return
        # Comparing two values costs at most the size of the smaller one: measure both
        # with a growing limit, so a small value next to a huge one stays cheap (the first,
        # constant-size measure is free).
        limit = 16
        while True:
            left_size, right_size = _size(left, limit), _size(right, limit)
            if limit > 16:
                self.charge(min(left_size, limit + 1) + min(right_size, limit + 1))
            if left_size <= limit or right_size <= limit:
                self.charge(min(left_size, right_size))
                return
            limit *= 2

    def eval_IfExp(self, node: ast.IfExp) -> Any:
        return self.run(node.body) if self.run(node.test) else self.run(node.orelse)

    def eval_Subscript(self, node: ast.Subscript) -> Any:
        value = self.run(node.value)
        index = self.run(node.slice)
        if not isinstance(index, slice):
            self.charge_size(index)
            return value[index]
        result = value[index]
        if isinstance(result, Sized):
            self.charge(len(result))
        return result

    def eval_Slice(self, node: ast.Slice) -> Any:
        parts = (node.lower, node.upper, node.step)
        lower, upper, step = (None if p is None else self.run(p) for p in parts)
        return slice(lower, upper, step)

    def eval_List(self, node: ast.List) -> Any:
        return [self.run(e) for e in node.elts]

    def eval_Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self.run(e) for e in node.elts)

    def eval_Set(self, node: ast.Set) -> Any:
        items = [self.run(e) for e in node.elts]
        self.charge_size(items)  # hashing
        return set(items)

    def eval_Dict(self, node: ast.Dict) -> Any:
        pairs = [
            (self.run(k), self.run(v))
            for k, v in zip(node.keys, node.values, strict=True)
            if k is not None
        ]
        self.charge_size([k for k, _ in pairs])  # hashing the keys
        return dict(pairs)

    def eval_Call(self, node: ast.Call) -> Any:
        args = [self.run(a) for a in node.args]
        kwargs = {kw.arg: self.run(kw.value) for kw in node.keywords if kw.arg is not None}
        func = node.func
        if isinstance(func, ast.Name):
            self._charge_function(func.id, args, kwargs)
            return SAFE_FUNCTIONS[func.id](*args, **kwargs)
        assert isinstance(func, ast.Attribute)  # guaranteed by the checker
        receiver = self.run(func.value)
        for kind, methods in SAFE_METHODS.items():
            if isinstance(receiver, kind) and func.attr in methods:
                if not isinstance(receiver, _CONSTANT_TIME_RECEIVERS):
                    self.charge_size(receiver)
                self.charge_size([args, kwargs])
                return getattr(receiver, func.attr)(*args, **kwargs)
        raise ExpressionError(
            self.text, f"method .{func.attr}() is not allowed on {type(receiver).__name__}"
        )

    def _charge_function(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        """
        Charge a safe function for the items it walks, and refuse the calls whose cost does
        not follow from the size of their arguments.
        """
        if name == "isinstance":
            self.charge_size(args[1:])  # a tuple of types is walked; the value is not
        elif name not in _CONSTANT_TIME_FUNCTIONS:
            self.charge_size([args, kwargs])
        if name == "round":
            digits = args[1] if len(args) > 1 else kwargs.get("ndigits")
            if isinstance(digits, int) and abs(digits) > _MAX_EXPONENT:
                raise ExpressionError(self.text, f"round() to {digits} digits is not allowed")
        elif name == "sum" and args:
            start = args[1] if len(args) > 1 else kwargs.get("start", 0)
            if not isinstance(start, (int, float, complex)):
                # Adding sequences copies the total so far each time: quadratic.
                count = len(args[0]) if isinstance(args[0], Sized) else MAX_STEPS
                self.charge(count * _size(args[0], MAX_STEPS - self.steps))

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
                self.charge(1)
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
        wanted = len(target.elts)
        values = list(itertools.islice(value, wanted + 1))  # never more than needed
        if len(values) != wanted:
            got = f"more than {wanted}" if len(values) > wanted else str(len(values))
            msg = f"cannot unpack {got} values into {wanted} names"
            raise ValueError(msg)
        for elt, v in zip(target.elts, values, strict=True):
            self._bind(elt, v)
