"""
Fuzzed loading: Hypothesis mutates valid Flow and JobState documents into malformed and
hostile ones. Loading either succeeds or raises ``DeserializationError`` with a ``path``;
no other exception escapes, nothing named by a document is imported, and no callable of
the registry is called.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routilux import Flow, JobState
from routilux.exceptions import DeserializationError
from routilux.serialization import register_callable, unregister_callable

from ._hostile import (
    CANARY_MODULES,
    HOSTILE_NAMES,
    SneakyDict,
    SneakyStr,
    base_flow_doc,
    base_job_doc,
    deep,
    huge_values,
    mutate,
    new_canaries,
    paths,
)


FLOW_DOC = base_flow_doc()
JOB_DOC = base_job_doc()
FLOW_PATHS = paths(FLOW_DOC)
JOB_PATHS = paths(JOB_DOC)
CANARY_CALLS: list[Any] = []


def _canary(*args: Any, **kwargs: Any) -> None:
    CANARY_CALLS.append((args, kwargs))


@pytest.fixture(scope="module", autouse=True)
def _registered_canary() -> Any:
    """A registered callable a hostile document may name; loading must never call it."""
    register_callable(_canary, "stress.canary")
    yield
    unregister_callable("stress.canary")


#: Canary modules some other test of the run imported already (not checked).
BASELINE: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def _canary_baseline() -> None:
    """Only canary modules that were absent before this module's tests are checked."""
    BASELINE.update(new_canaries())
    assert len(BASELINE) < len(CANARY_MODULES) // 2, f"too many canaries loaded: {BASELINE}"


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(HOSTILE_NAMES),
    st.sampled_from(["stress.canary", "Routine", "retry", "append", "override", "paused"]),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(HOSTILE_NAMES), inner, max_size=4)
    ),
    max_leaves=12,
)
python_oddity = st.sampled_from(
    [
        SneakyStr("Routine"),
        b"bytes",
        (1, 2),
        {1, 2},
        {1: "int key"},
        {("t",): "tuple key"},
        1 + 2j,
        object(),
        print,
        type,
        Flow,
    ]
)
big = st.sampled_from(range(len(huge_values()))).map(lambda i: huge_values()[i])
value = st.one_of(json_value, python_oddity, big)
ops = st.sampled_from(["replace", "delete", "extra", "wrap"])


def _load_checked(kind: str, doc: Any) -> None:
    """Load ``doc``; only DeserializationError (with a str path) may escape."""
    path: Any = ""
    try:
        if kind == "flow":
            Flow().deserialize(doc)
        else:
            JobState().deserialize(doc)
    except DeserializationError as exc:
        path = exc.path
    assert isinstance(path, str)
    # Any other exception fails the test with its traceback.
    imported = new_canaries() - BASELINE
    assert not imported, f"loading imported {imported}"
    assert not CANARY_CALLS, f"loading called a registered callable: {CANARY_CALLS[:3]}"


FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class TestFuzzedLoading:
    @FUZZ
    @given(path=st.sampled_from(FLOW_PATHS), op=ops, new=value)
    def test_flow_documents(self, path: tuple[Any, ...], op: str, new: Any) -> None:
        """A Flow document mutated at any path loads or raises DeserializationError."""
        _load_checked("flow", mutate(FLOW_DOC, path, op, new))

    @FUZZ
    @given(path=st.sampled_from(JOB_PATHS), op=ops, new=value)
    def test_job_state_documents(self, path: tuple[Any, ...], op: str, new: Any) -> None:
        """A JobState document mutated at any path loads or raises DeserializationError."""
        _load_checked("job", mutate(JOB_DOC, path, op, new))

    @settings(max_examples=60, deadline=None)
    @given(
        muts=st.lists(
            st.tuples(st.sampled_from(JOB_PATHS), ops, json_value), min_size=2, max_size=6
        )
    )
    def test_job_state_many_mutations(self, muts: list[tuple[Any, str, Any]]) -> None:
        """Several mutations at once (later ones skipped if their path vanished)."""
        doc: Any = JOB_DOC
        for path, op, new in muts:
            try:
                doc = mutate(doc, path, op, new)
            except (KeyError, IndexError, TypeError, AttributeError):
                continue
        _load_checked("job", doc)

    @settings(max_examples=100, deadline=None)
    @given(doc=json_value)
    def test_arbitrary_json_is_rejected_cleanly(self, doc: Any) -> None:
        """Any JSON value at all: load or DeserializationError, for both loaders."""
        _load_checked("flow", doc)
        _load_checked("job", doc)

    @pytest.mark.parametrize("name", HOSTILE_NAMES)
    @pytest.mark.parametrize(
        "where",
        [
            ("routines", "a", "type"),
            ("routines", "b", "slots", 0, "merge_strategy"),
            ("routines", "a", "slots", 0, "handler"),
            ("routines", "b", "error_handler", "retryable_exceptions", 0),
            ("routines", "b", "error_handler", "strategy"),
            ("execution_strategy",),
            ("format",),
        ],
        ids=["type", "merge", "handler", "retryable", "strategy", "exec", "format"],
    )
    def test_flow_names_never_import(self, name: str, where: tuple[Any, ...]) -> None:
        """
        Every hostile name in every name-bearing field: rejected with a path, never
        imported. An unknown merge-strategy name is the one exception: it is kept as the
        plain string it is (it behaves as "override"), still never resolved.
        """
        doc = mutate(FLOW_DOC, where, "replace", name)
        if where[-1] == "handler":
            doc = mutate(FLOW_DOC, where, "replace", {"callable": name})
        flow = Flow()
        if where[-1] == "merge_strategy":
            flow.deserialize(doc)
            assert flow.routines["b"].get_slot("inp").merge_strategy == name
        else:
            with pytest.raises(DeserializationError) as info:
                flow.deserialize(doc)
            assert info.value.path
        assert not new_canaries() - BASELINE

    @pytest.mark.parametrize(
        "where",
        [("routines", "a", "slots", 0, "handler"), ("routines", "b", "slots", 0, "merge_strategy")],
        ids=["handler", "merge"],
    )
    def test_registered_callable_is_resolved_not_called(self, where: tuple[Any, ...]) -> None:
        """A registered callable named by a document is looked up, never called at load."""
        name: Any = "stress.canary"
        if where[-1] == "handler":
            name = {"callable": name}
        doc = mutate(FLOW_DOC, where, "replace", name)
        flow = Flow()
        flow.deserialize(doc)
        assert not CANARY_CALLS

    @pytest.mark.parametrize("depth", [100, 1_000, 20_000])
    @pytest.mark.parametrize("kind", ["list", "dict"])
    def test_deep_nesting(self, depth: int, kind: str) -> None:
        """Deeply nested shared data: loads or a DeserializationError, never RecursionError."""
        doc = mutate(JOB_DOC, ("shared_data", "k"), "replace", deep(depth, kind=kind))
        _load_checked("job", doc)

    @pytest.mark.parametrize(
        ("where", "bad"),
        [
            ((), 10**5000),
            ((), deep(5_000)),
            (("format",), 10**5000),
            (("format",), deep(5_000)),
            (("format",), deep(5_000, kind="dict")),
            (("version",), deep(5_000, kind="dict")),
            (("routine_states",), deep(5_000)),
            (("pending_tasks", 0, "slot_routine_id"), 10**5000),
            (("pending_tasks", 0, "slot_routine_id"), deep(5_000, kind="dict")),
        ],
        ids=[
            "root-int",
            "root-list",
            "format-int",
            "format-list",
            "format-dict",
            "version-dict",
            "routine_states-list",
            "pending-int",
            "pending-dict",
        ],
    )
    def test_values_whose_repr_fails(self, where: tuple[Any, ...], bad: Any) -> None:
        """A value that cannot be repr()'d in an error message still gives a clean error."""
        _load_checked("job", mutate(JOB_DOC, where, "replace", bad))

    def test_dict_subclass_is_refused(self) -> None:
        """A dict subclass with raising methods is refused by type, its methods unused."""
        with pytest.raises(DeserializationError):
            JobState().deserialize(SneakyDict(JOB_DOC))
        with pytest.raises(DeserializationError):
            Flow().deserialize(SneakyDict(FLOW_DOC))

    def test_error_paths_name_the_field(self) -> None:
        """The path of the error names the mutated field."""
        doc = mutate(JOB_DOC, ("history_dropped",), "replace", "many")
        with pytest.raises(DeserializationError) as info:
            JobState().deserialize(doc)
        assert "history_dropped" in info.value.path
        doc = mutate(FLOW_DOC, ("routines", "b", "error_handler", "max_retries"), "replace", [])
        with pytest.raises(DeserializationError) as info:
            Flow().deserialize(doc)
        assert "max_retries" in info.value.path

    def test_load_never_mutates_the_input(self) -> None:
        """Loading leaves the caller's document exactly as it was."""
        before = json.dumps(JOB_DOC, sort_keys=True)
        JobState().deserialize(JOB_DOC)
        Flow().deserialize(FLOW_DOC)
        assert json.dumps(JOB_DOC, sort_keys=True) == before

    def test_file_with_bad_json(self, tmp_path: Any) -> None:
        """JobState.load of a non-JSON or hostile file: DeserializationError."""
        bad = tmp_path / "bad.json"
        for text in ["{", "[]", "null", '{"format": "os:system"}', "NaN", "1e999999"]:
            bad.write_text(text, encoding="utf-8")
            with pytest.raises(DeserializationError):
                JobState.load(bad)
        assert not new_canaries() - BASELINE
        assert math.isfinite(1.0)


def test_canary_modules_are_importable() -> None:
    """The canary check means something: the modules exist (imported in a subprocess)."""
    import subprocess
    import sys

    code = "import " + ", ".join(CANARY_MODULES[1:])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
