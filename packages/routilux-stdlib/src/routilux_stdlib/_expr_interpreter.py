"""
The interpreter of checked expressions: evaluates a tree the checker accepted, charging every
step and the size of what it builds against the limits (see :mod:`routilux_stdlib._expr`).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import ItemsView, KeysView, Sized, ValuesView
from typing import Any, Final

from ._expr_rules import (
    BINOPS,
    CMPOPS,
    MAX_EXPONENT,
    MAX_SIZE,
    MAX_STEPS,
    SAFE_FUNCTIONS,
    SAFE_METHODS,
    UNARYOPS,
)
from .exceptions import ExpressionError


__all__ = ["Interpreter"]

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


class Interpreter:
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
        if isinstance(op, ast.Pow) and isinstance(right, int) and abs(right) > MAX_EXPONENT:
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
        return BINOPS[type(op)](left, right)

    def _check_int(self, op: ast.operator, left: int, right: int) -> None:
        """
        Refuse an integer ``**`` or ``*`` whose result would have more than ``MAX_SIZE``
        bits, estimated before computing it, and charge the cost of the operation.
        """
        if isinstance(op, ast.Pow):
            bits = left.bit_length() * max(right, 0)
            if bits > MAX_SIZE:
                raise self.too_large(f"power ({bits} bits estimated)")
            self.charge((1 + bits // 64) ** 2 // 64)
            return
        if isinstance(op, ast.Mult):
            bits = left.bit_length() + right.bit_length()
            if bits > MAX_SIZE:
                raise self.too_large(f"multiplication ({bits} bits estimated)")
        if isinstance(op, _INT_COSTLY_OPS):
            self.charge(_words(left) * _words(right) // 64)
        else:
            self.charge(_words(left) + _words(right) - 2)

    def _check_repeat(self, seq: Any, times: Any) -> None:
        """
        Refuse a repetition that would build more than ``MAX_SIZE`` items (nested items
        included), and charge the items it builds.
        """
        if not (isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int)):
            return
        # A list or tuple counts its items (nested ones included), not itself.
        if isinstance(seq, (str, bytes)):
            if len(seq) * times > MAX_SIZE:
                raise self.too_large("repetition")
            self.charge(max(len(seq) * times, 0) // 64)
            return
        items = self.charge_size(seq) - 1
        if items * times > MAX_SIZE:
            raise self.too_large("repetition")
        self.charge(max(items * times, 0))

    def eval_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.run(node.operand)
        if isinstance(operand, int):
            self.charge(_words(operand) - 1)
        return UNARYOPS[type(node.op)](operand)

    def eval_Compare(self, node: ast.Compare) -> Any:
        left = self.run(node.left)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = self.run(comp)
            self._charge_compare(op, left, right)
            if not CMPOPS[type(op)](left, right):
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
            if isinstance(digits, int) and abs(digits) > MAX_EXPONENT:
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
            if len(out) > MAX_SIZE:
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
