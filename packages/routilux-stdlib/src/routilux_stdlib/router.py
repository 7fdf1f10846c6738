"""
ConditionalRouter: send data to the first (or every) route whose condition matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from routilux import Routine
from routilux.exceptions import DeserializationError, EventNotFoundError

from .exceptions import ExpressionError
from .predicates import Condition, check_condition, condition_matches, condition_to_data


__all__ = ["ConditionalRouter", "job_stats"]


def job_stats(routine: Routine) -> dict[str, Any]:
    """
    Return a snapshot of the running job's shared data, or ``{}`` outside a job: what
    conditions see as ``stats``.
    """
    ctx = routine.get_execution_context()
    if ctx is None:
        return {}
    return dict(ctx.job_state.shared_data)


class ConditionalRouter(Routine):
    """
    Route data by conditions: each route is an event of this routine.

    Slot ``input`` takes ``data``. Each route emits its own event with ``data`` and
    ``route``. With no match, ``default_route`` is emitted when set, else ``output`` with
    ``route="unmatched"``.

    A condition is a registered predicate name, a safe expression over ``data``,
    ``config`` and ``stats`` (the job's shared data), a field-match dict, or a callable
    (see :mod:`routilux_stdlib.predicates`). A condition that raises while it runs does not
    match (also when the safe evaluator refuses a step at run time, such as ``.get()`` on a
    string); an expression the evaluator refuses when it is parsed raises
    :class:`~routilux_stdlib.exceptions.ExpressionError` when the route is declared.

    Routes are declared with :meth:`add_route` or ``set_config(routes=[...])``, both of
    which declare the route events; events are never declared while a job runs, and a
    matched route without an event is an error of the activation.

    Config:
        routes (list): ``(route name, condition)`` pairs, in evaluation order ([]).
        default_route (str | None): The route of data nothing matched (None).
        route_priority (str): ``"first_match"`` (default) stops at the first match; any
            other value emits every matching route.

    .. versionchanged:: 0.10
       No ``eval``: string conditions run in a safe evaluator; ``stats`` is the job's
       shared data; lambdas refuse to serialize (register the predicate instead).
    """

    #: Conditions read any key of the config (``config['limit']``): a flow file may set
    #: keys beyond those above.
    open_config = True

    def __init__(self) -> None:
        super().__init__()
        self.set_config(routes=[], default_route=None, route_priority="first_match")
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``output`` event (unmatched data).
        self.output_event = self.define_event("output", ["data", "route"])

    def set_config(self, **kwargs: Any) -> None:
        """
        Update the config; route names in ``routes`` and ``default_route`` get their events.

        Raises:
            ExpressionError: A route condition is an expression the evaluator refuses.
        """
        routes = kwargs.get("routes")
        if routes is not None:
            for name, condition in self._pairs(routes):
                check_condition(condition)
                self._declare(name)
        default = kwargs.get("default_route")
        if default:
            self._declare(str(default))
        super().set_config(**kwargs)

    def _declare(self, name: str) -> None:
        if self.get_event(name) is None:
            self.define_event(name, ["data", "route"])

    @staticmethod
    def _pairs(routes: Sequence[Any]) -> list[tuple[str, Condition]]:
        out = []
        for entry in routes:
            name, condition = entry
            out.append((str(name), condition))
        return out

    def add_route(self, route_name: str, condition: Condition) -> None:
        """
        Append a route and declare its event.

        Raises:
            ExpressionError: ``condition`` is an expression the evaluator refuses.
        """
        check_condition(condition)
        self._declare(route_name)
        routes = self._config.setdefault("routes", [])
        routes.append((route_name, condition))

    def serialize_config(self) -> dict[str, Any]:
        """
        Return the config as data for Flow serialization: routes become
        ``[name, condition]`` pairs with callables replaced by their predicate names.

        Raises:
            SerializationError: A route's condition is a lambda, closure or other callable
                without a registered predicate name (the message names the route; the
                ``path`` is the condition's, such as ``config.routes[0][1]``).
        """
        config = dict(self._config)
        config["routes"] = [
            [
                name,
                condition_to_data(
                    condition, f"config.routes[{i}][1]", f"route {name!r} of {self!r}"
                ),
            ]
            for i, (name, condition) in enumerate(self._pairs(config.get("routes") or []))
        ]
        return config

    def deserialize_config(self, config: dict[str, Any]) -> None:
        """
        Restore the config written by :meth:`serialize_config` (Flow loading calls this):
        conditions are checked, not run, and route events are declared.

        Raises:
            DeserializationError: A condition is an expression the evaluator refuses; the
                path is the condition's (``config.routes[1][1]``).
        """
        routes = config.get("routes")
        for i, entry in enumerate(routes if isinstance(routes, list) else ()):
            # Checked one by one first, so that the error names the route.
            if isinstance(entry, list) and len(entry) == 2:
                try:
                    check_condition(entry[1])
                except ExpressionError as exc:
                    path = f"config.routes[{i}][1]"
                    raise DeserializationError(str(exc), path=path) from None
        try:
            self.set_config(**config)
        except ExpressionError as exc:
            raise DeserializationError(str(exc), path="config.routes") from None

    def match(self, data: Any) -> list[str]:
        """
        Return the names of the routes ``data`` takes, in order (none when unmatched).
        A condition that raises while it is evaluated does not match.
        """
        config = self.config()
        stats = job_stats(self)
        first = config.get("route_priority", "first_match") == "first_match"
        matched: list[str] = []
        for name, condition in self._pairs(config.get("routes") or []):
            if condition_matches(condition, data, config, stats):
                matched.append(name)
                if first:
                    break
        return matched

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        value = self._extract_input_data(data, **kwargs)
        routes = self.match(value)
        if not routes:
            default = self.get_config("default_route")
            if default:
                routes = [str(default)]
        missing = [r for r in routes if self.get_event(r) is None]
        if missing:
            msg = (
                f"route event(s) {missing!r} are not declared in {self!r}; declare routes "
                "with add_route() or set_config(routes=...) before running"
            )
            raise EventNotFoundError(msg, name=missing[0])
        if not routes:
            self.emit("output", data=value, route="unmatched")
            return
        for route in routes:
            self.emit(route, data=value, route=route)
