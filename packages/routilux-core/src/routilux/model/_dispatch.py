"""
How a slot handler is called with a data dict: the signature is analysed once, at
``define_slot`` (or when a handler is assigned), and turned into a small caller.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any


__all__ = ["HandlerCall", "is_coroutine_callable", "make_caller"]

HandlerCall = Callable[[dict[str, Any]], Any]
"""Calls a handler with a merged data dict and returns what the handler returned."""


def is_coroutine_callable(handler: Any) -> bool:
    """
    Tell whether calling ``handler`` returns a coroutine: an ``async def`` function or
    method, a ``functools.partial`` of one, or an object whose ``__call__`` is one.
    """
    while isinstance(handler, functools.partial):
        handler = handler.func
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(type(handler), "__call__", None)  # noqa: B004 - we want the type's method
    if call is not None and not inspect.isfunction(handler) and not inspect.ismethod(handler):
        return asyncio.iscoroutinefunction(call)
    return False


def _parameters(handler: Callable[..., Any]) -> tuple[list[str], bool] | None:
    try:
        sig = inspect.signature(handler)
    except (TypeError, ValueError):
        return None
    names: list[str] = []
    var_kw = False
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var_kw = True
        else:
            names.append(p.name)
    return names, var_kw


def _whole(merged: Any) -> Any:
    # The whole merged value for a handler: its own copy when it is a dict (a callable merge
    # strategy may return anything else, which is passed as it is).
    return dict(merged) if isinstance(merged, dict) else merged


def make_caller(handler: Callable[..., Any]) -> HandlerCall:
    """
    Build the caller for ``handler`` by the dispatch rules of the original library.

    1. A ``**kwargs`` parameter: the dict is passed as keyword arguments.
    2. One parameter named ``data``: the whole dict is passed.
    3. One parameter ``p``: ``dict[p]`` when present, else the whole dict.

    Rules 2 and 3 also pass a merged value that is not a dict (what a callable merge
    strategy returned) as it is; rules 1 and 4 need a dict.
    4. Several parameters: the ones present in the dict as keywords, or the whole dict
       positionally when none is present. A handler with no parameters is called bare.
    """
    # Callers never hand the dict they get to the handler itself: a handler that receives
    # the whole dict gets a copy, so the scheduler can pass payloads without copying them.
    analysed = _parameters(handler)
    if analysed is None:
        return lambda merged: handler(_whole(merged))
    names, var_kw = analysed
    if var_kw:
        return lambda merged: handler(**merged)
    if not names:
        return lambda merged: handler()
    if len(names) == 1:
        (only,) = names
        if only == "data":
            return lambda merged: handler(_whole(merged))

        def one(merged: dict[str, Any]) -> Any:
            if isinstance(merged, dict) and only in merged:
                return handler(merged[only])
            return handler(_whole(merged))

        return one
    wanted = tuple(names)

    def several(merged: dict[str, Any]) -> Any:
        matched = {p: merged[p] for p in wanted if p in merged}
        if matched:
            return handler(**matched)
        return handler(dict(merged))

    return several
