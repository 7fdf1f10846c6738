"""
The human tasks of a store: the questions ``HumanInput`` routines of paused jobs wait on.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from routilux import JobState
from routilux.exceptions import JobStoreError, UnknownRoutineTypeError
from routilux.registry import get_routine_class
from routilux.store import JobStore

from ._job_listing import JobIndex


__all__ = [
    "ANSWER_FIELDS",
    "HumanInputClass",
    "Inbox",
    "Question",
    "answer_options",
    "human_input",
    "questions_of",
    "waiting_in",
]

ANSWER_FIELDS: tuple[str, ...] = ("answer",)
"""The values a ``HumanInput`` answer form asks for (``answer=`` is what the routine emits)."""

_OPTIONS = re.compile(r"(?P<options>[\w-]+(?:\s*/\s*[\w-]+)+)\s*[?.!:]?\s*\)?\s*$")


class HumanInputClass(Protocol):
    """
    What the page needs of the ``HumanInput`` routine class (routilux-stdlib).
    """

    @staticmethod
    def waiting(job_state: JobState) -> dict[str, dict[str, Any]]:
        """
        The questions of ``job_state`` without an answer, by routine id.
        """

    @staticmethod
    def provide_answer(job_state: JobState, routine_id: str, /, **values: Any) -> None:
        """
        Answer the question of ``routine_id`` in ``job_state``.
        """


def human_input() -> HumanInputClass | None:
    """
    Return the class registered as ``HumanInput`` (routilux-stdlib), or ``None`` without it.
    """
    try:
        cls: Any = get_routine_class("HumanInput")
    except UnknownRoutineTypeError:
        return None
    if not (hasattr(cls, "waiting") and hasattr(cls, "provide_answer")):
        return None
    found: HumanInputClass = cls
    return found


def waiting_in(state: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """
    Return the unanswered questions of a stored job state, by routine id, as
    ``HumanInput.waiting`` reads them (from the state's shared data alone).
    """
    cls = human_input()
    shared = state.get("shared_data") if state else None
    if cls is None or not isinstance(shared, dict):
        return {}
    job_state = JobState()
    for key, value in shared.items():
        job_state.update_shared_data(key, value)
    return cls.waiting(job_state)


def answer_options(question: str) -> tuple[str, ...]:
    """
    Return the choices a question ends with (``"... yes/no"`` gives ``("yes", "no")``).
    """
    match = _OPTIONS.search(question)
    if match is None:
        return ()
    return tuple(part.strip() for part in match.group("options").split("/"))


@attrs.frozen
class Question:
    """
    One question a paused job waits on.
    """

    job_id: str
    flow_id: str
    routine_id: str
    request_id: str
    question: str
    #: The input that asked (the routine's ``data``).
    data: Any
    asked_at: str
    #: The values the answer form asks for.
    fields: tuple[str, ...]
    #: The choices the question offers (may be empty).
    options: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """
        Return the question as the API gives it.
        """
        return {
            "job_id": self.job_id,
            "flow_id": self.flow_id,
            "routine_id": self.routine_id,
            "request_id": self.request_id,
            "question": self.question,
            "data": self.data,
            "asked_at": self.asked_at,
            "fields": list(self.fields),
            "options": list(self.options),
        }


def questions_of(job_id: str, flow_id: str, state: Mapping[str, Any] | None) -> list[Question]:
    """
    Return the questions a stored job state waits on, in routine id order.
    """
    out = []
    for rid, request in sorted(waiting_in(state).items()):
        text = str(request.get("question", ""))
        out.append(
            Question(
                job_id=job_id,
                flow_id=flow_id,
                routine_id=rid,
                request_id=str(request.get("request_id", "")),
                question=text,
                data=request.get("data"),
                asked_at=str(request.get("asked_at", "")),
                fields=ANSWER_FIELDS,
                options=answer_options(text),
            )
        )
    return out


class Inbox:
    """
    The questions of every paused job of a store, oldest question first; each job's are
    read once per version of its row.
    """

    def __init__(self, store: JobStore, index: JobIndex) -> None:
        self._store = store
        self._index = index
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, list[Question]]] = {}

    def questions(self, max_age: float | None = None) -> list[Question]:
        """
        Return the open questions (from a listing at most ``max_age`` seconds old).
        """
        paused = [r for r in self._index.snapshot(max_age).records if r.status == "paused"]
        out: list[Question] = []
        with self._lock:
            fresh: dict[str, tuple[float, list[Question]]] = {}
            for record in paused:
                cached = self._cache.get(record.job_id)
                if cached is None or cached[0] != record.updated_at:
                    try:
                        state = self._store.load_job(record.job_id).state
                    except JobStoreError:  # deleted or damaged since it was listed
                        continue
                    cached = (record.updated_at, questions_of(record.job_id, record.flow_id, state))
                fresh[record.job_id] = cached
                out.extend(cached[1])
            self._cache = fresh
        out.sort(key=lambda q: (q.asked_at, q.job_id, q.routine_id))
        return out
