"""
HumanInput: ask a person a question, pause the job, and deliver the answer on resume.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from routilux import JobState, Routine
from routilux.exceptions import InvalidStateError

from ._state import PREFIX, require_context, state_key, update_state


__all__ = ["HumanInput"]

_KIND = "HumanInput"


class HumanInput(Routine):
    """
    Ask a question and pause the job until someone answers.

    Slot ``input`` takes ``data`` and an optional ``question``. The routine stores the
    question in the job (shared data under ``"routilux_stdlib.HumanInput/<routine id>"``),
    sends it to the job's output handler (output type ``"human_input"``), stores a deferred
    event and pauses the job. Before resuming, set the answer with
    :meth:`provide_answer`; :meth:`waiting` lists what a job waits for. On resume, the
    deferred event reaches this routine's own ``resume`` slot, which emits ``output``
    with:

    * ``answer``: the value given as ``answer=``, else the only value given, else all of
      them as a dict;
    * ``values``: every value given, as a dict;
    * ``question``, ``data`` (the input that asked) and ``request_id``.

    A job resumed without an answer asks again and pauses again.

    Config:
        question (str): The question, a ``str.format`` template over the input when it is
            a dict (``"Please provide input"``). A ``question`` in the input wins.
        pause_reason (str): The reason of the pause point (``"waiting for human input"``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(question="Please provide input", pause_reason="waiting for human input")
        #: The ``input`` slot.
        self.input_slot = self.define_slot("input", self._handle_input)
        #: The ``output`` event (the answer).
        self.output_event = self.define_event(
            "output", ["answer", "values", "question", "data", "request_id"]
        )
        # Internal: the deferred event stored when asking comes back to this routine's own
        # slot on resume (the scheduler delivers to directly linked slots of flow routines).
        #: The internal ``resume`` event.
        self.resume_event = self.define_event("resume", ["request_id"])
        #: The internal ``resume`` slot.
        self.resume_slot = self.define_slot("resume", self._handle_resume)
        self.resume_event.connect(self.resume_slot)

    # -- public helpers for whoever answers (the CLI, a web app...) -----------------------

    @staticmethod
    def waiting(job_state: JobState) -> dict[str, dict[str, Any]]:
        """
        Return the questions of ``job_state`` that have no answer yet, by routine id:
        ``{routine_id: {"request_id", "question", "data", "asked_at"}}``.
        """
        out: dict[str, dict[str, Any]] = {}
        prefix = f"{PREFIX}{_KIND}/"
        for key, state in list(job_state.shared_data.items()):
            if not key.startswith(prefix) or not isinstance(state, dict):
                continue
            request = state.get("request")
            if isinstance(request, dict) and state.get("answer") is None:
                out[key[len(prefix) :]] = dict(request)
        return out

    @staticmethod
    def provide_answer(job_state: JobState, routine_id: str, /, **values: Any) -> None:
        """
        Answer the question HumanInput ``routine_id`` asked in ``job_state``; call it
        before ``flow.resume(job_state)``. ``values`` must be JSON-able to survive a save.

        Raises:
            InvalidStateError: That routine asked nothing in this job (a ``RuntimeError``).
            ValueError: No value was given.
        """
        if not values:
            msg = "provide_answer needs at least one value, for example answer='yes'"
            raise ValueError(msg)
        key = state_key(_KIND, routine_id)
        missing: list[bool] = []

        def answer(state: Any) -> Any:
            if not isinstance(state, dict) or not isinstance(state.get("request"), dict):
                missing.append(True)
                return state
            return {**state, "answer": dict(values)}

        job_state.modify_shared_data(key, answer)
        if missing:
            known = ", ".join(sorted(HumanInput.waiting(job_state))) or "none"
            msg = (
                f"HumanInput {routine_id!r} is not waiting for an answer in {job_state!r} "
                f"(waiting: {known})"
            )
            raise InvalidStateError(msg)

    # -- handlers -----------------------------------------------------------------------

    def _question(self, value: Any, explicit: Any) -> str:
        if explicit is not None:
            return str(explicit)
        template = str(self.get_config("question", "Please provide input"))
        if isinstance(value, dict):
            try:
                return template.format(**value)
            except (KeyError, IndexError, ValueError):
                return template
        return template

    def _ask(self, request: dict[str, Any]) -> None:
        ctx = require_context(self)
        self.send_output("human_input", **request, routine_id=ctx.routine_id)
        self.emit_deferred_event("resume", request_id=request["request_id"])
        reason = str(self.get_config("pause_reason", "waiting for human input"))
        ctx.flow.pause(
            ctx.job_state,
            reason=reason,
            checkpoint={"routine_id": ctx.routine_id, "request_id": request["request_id"]},
        )

    def _handle_input(self, data: Any = None, question: Any = None, **kwargs: Any) -> None:
        ctx = require_context(self)
        value = self._extract_input_data(data, **kwargs)
        text = self._question(value, question)

        def store(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            number = int(state.get("asked", 0)) + 1
            request = {
                "request_id": f"{ctx.routine_id}:{number}",
                "question": text,
                "data": value,
                "asked_at": datetime.now().isoformat(),
            }
            return {"asked": number, "request": request, "answer": None}, request

        self._ask(update_state(ctx, _KIND, store))

    def _handle_resume(self, request_id: str | None = None, **_: Any) -> None:
        ctx = require_context(self)

        def take(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            request = state.get("request")
            values = state.get("answer")
            stale = (
                request_id and isinstance(request, dict) and request.get("request_id") != request_id
            )
            if not isinstance(request, dict) or stale:
                return state, {}
            if values is None:
                return state, {"ask": request}
            return {"asked": state.get("asked", 0)}, {"request": request, "values": values}

        outcome = update_state(ctx, _KIND, take)
        if "ask" in outcome:
            self._ask(outcome["ask"])
            return
        if not outcome:
            return
        request, values = outcome["request"], outcome["values"]
        if "answer" in values:
            answer = values["answer"]
        elif len(values) == 1:
            answer = next(iter(values.values()))
        else:
            answer = dict(values)
        self.emit(
            "output",
            answer=answer,
            values=dict(values),
            question=request["question"],
            data=request["data"],
            request_id=request["request_id"],
        )
