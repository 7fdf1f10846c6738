"""
Hypothesis strategies for serialization round trips: JSON values, flows of registered
test routines, and job states.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from routilux import ErrorHandler, Flow, JobState, Routine
from routilux.job_state import ExecutionRecord
from routilux.registry import register_routine
from routilux.serialization import register_callable


def keep_last(accumulated: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A registered merge strategy: the new data wins."""
    return {**accumulated, **new}


def shout(value: Any = None, **_: Any) -> None:
    """A registered module-level slot handler."""


def double(x: int) -> int:
    """A registered callable used as a config value."""
    return 2 * x


register_callable(keep_last, name="tests.strategies.keep_last")
register_callable(shout, name="tests.strategies.shout")
register_callable(double, name="tests.strategies.double")


@register_routine(name="tests.strategies.Source")
class Source(Routine):
    """Declares a trigger slot and an ``out`` event in its constructor."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, **_: Any) -> None:
        """Emit nothing; the round trips never run."""

    def other(self, **_: Any) -> None:
        """A second method a slot may be bound to."""


@register_routine(name="tests.strategies.Sink")
class Sink(Routine):
    """Declares an ``input`` slot in its constructor."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take, merge_strategy="append")

    def take(self, **_: Any) -> None:
        """Accept anything."""


ROUTINE_CLASSES = [Source, Sink, Routine]
NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
KEYS = st.text(max_size=6) | st.sampled_from(["$callable", "$dict", "format", "_type"])


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """JSON values (no NaN, so that values compare equal)."""
    return st.recursive(
        SCALARS,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3)
        ),
        max_leaves=max_leaves,
    )


def json_objects(max_leaves: int = 8) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects."""
    return st.dictionaries(KEYS, json_values(max_leaves), max_size=4)


def error_handlers() -> st.SearchStrategy[ErrorHandler]:
    """Error handlers with registered (built-in) retryable exceptions."""
    return st.builds(
        ErrorHandler,
        strategy=st.sampled_from(["stop", "continue", "retry", "skip"]),
        max_retries=st.integers(0, 10),
        retry_delay=st.floats(0, 100),
        retry_backoff=st.floats(1, 10),
        retryable_exceptions=st.lists(
            st.sampled_from([ValueError, KeyError, TimeoutError, Exception, OSError]),
            max_size=3,
            unique=True,
        ).map(lambda xs: tuple(xs) or None),
        is_critical=st.booleans(),
    )


@st.composite
def flows(draw: st.DrawFn) -> Flow:
    """Flows of registered routines with extra slots, events, configs and connections."""
    strategy = draw(st.sampled_from(["sequential", "concurrent"]))
    flow = Flow(
        flow_id=draw(NAMES),
        execution_strategy=strategy,
        max_workers=draw(st.integers(1, 16)),
        max_async=draw(st.integers(1, 64)),
        history_limit=draw(st.none() | st.integers(1, 1000)),
    )
    if draw(st.booleans()):
        flow.set_error_handler(draw(error_handlers()))
    ids = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    for rid in ids:
        routine = draw(st.sampled_from(ROUTINE_CLASSES))()
        config = draw(json_objects())
        if draw(st.booleans()):
            config["fn"] = double
            config["nested"] = [{"call": double}]
        routine.set_config(**config)
        if draw(st.booleans()):
            routine.set_error_handler(draw(error_handlers()))
        for name in draw(st.lists(NAMES, max_size=3, unique=True)):
            if routine.get_slot(name) is not None:
                continue
            handler = draw(
                st.sampled_from(
                    [None, shout]
                    + ([routine.fire, routine.other] if isinstance(routine, Source) else [])
                )
            )
            merge = draw(st.sampled_from(["override", "append", keep_last]))
            routine.define_slot(name, handler, merge)
        for name in draw(st.lists(NAMES, max_size=3, unique=True)):
            if routine.get_event(name) is None:
                routine.define_event(name, draw(st.lists(NAMES, max_size=3)))
        flow.add_routine(routine, rid)
    pairs = [
        (src, event, dst, slot)
        for src, r in flow.routines.items()
        for event in r._events
        for dst, t in flow.routines.items()
        for slot in t._slots
    ]
    if pairs:
        chosen = draw(st.lists(st.sampled_from(pairs), max_size=6, unique=True))
        for src, event, dst, slot in chosen:
            mapping = draw(st.dictionaries(NAMES, NAMES, max_size=2))
            flow.connect(src, event, dst, slot, mapping or None)
    return flow


TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)) | st.just(
    datetime(2025, 1, 1) + timedelta(microseconds=1)
)


def records() -> st.SearchStrategy[ExecutionRecord]:
    """History records."""
    return st.builds(ExecutionRecord, NAMES, NAMES, json_objects(4), TIMES)


def pending_tasks() -> st.SearchStrategy[dict[str, Any]]:
    """Pending activations in the scheduler's format."""
    return st.fixed_dictionaries(
        {
            "slot_routine_id": NAMES,
            "slot_name": NAMES,
            "data": json_objects(4),
            "connection_source_routine_id": st.none() | NAMES,
            "connection_source_event_name": st.none() | NAMES,
            "connection_target_routine_id": st.none() | NAMES,
            "connection_target_slot_name": st.none() | NAMES,
            "param_mapping": st.dictionaries(NAMES, NAMES, max_size=2),
            "priority": st.integers(0, 5),
            "retry_count": st.integers(0, 5),
            "max_retries": st.integers(0, 5),
            "created_at": TIMES.map(datetime.isoformat),
            "seq": st.integers(0, 10**6),
            "entry": st.booleans(),
        }
    )


def deferred_events() -> st.SearchStrategy[dict[str, Any]]:
    """Deferred events in the JobState's format."""
    return st.fixed_dictionaries(
        {
            "routine_id": NAMES,
            "event_name": NAMES,
            "data": json_objects(4),
            "timestamp": TIMES.map(datetime.isoformat),
        }
    )


@st.composite
def job_states(draw: st.DrawFn) -> JobState:
    """Job states with every serialized field filled."""
    limit = draw(st.none() | st.integers(1, 20))
    js = JobState(draw(NAMES), history_limit=limit)
    js.job_id = draw(NAMES)
    js.status = draw(st.sampled_from(["pending", "paused", "completed"]) | st.text(max_size=8))
    js.current_routine_id = draw(st.none() | NAMES)
    js.routine_states = draw(st.dictionaries(NAMES, json_objects(4), max_size=3))
    for record in draw(st.lists(records(), max_size=8)):
        js.execution_history.append(record)
    js.pause_points = draw(st.lists(json_objects(4), max_size=2))
    js.pending_tasks = draw(st.lists(pending_tasks(), max_size=3))
    js.deferred_events = draw(st.lists(deferred_events(), max_size=2))
    js.shared_data = draw(json_objects())
    js.shared_log = draw(st.lists(json_objects(4), max_size=3))
    js.output_log = draw(st.lists(json_objects(4), max_size=3))
    js.metadata = draw(json_objects(4))
    js.checkpoint = draw(st.none() | json_objects(4))
    js.created_at = draw(TIMES)
    js.updated_at = draw(TIMES)
    js.history_dropped = draw(st.integers(0, 100))
    return js
