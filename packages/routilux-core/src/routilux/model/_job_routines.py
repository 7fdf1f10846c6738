"""
The routine states of a JobState: one dict per flow routine id, packed when the job
finishes so that a retained finished job carries no dict per routine (nor the text of the
times the engine wrote, when it still has the epoch times they were formatted from).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from routilux._util._clock import iso_of
from routilux.model._job_changes import ChangeKind, JobStatePart


if TYPE_CHECKING:
    from routilux.model._context import RunState

__all__ = ["JobRoutines", "PackedStates"]

_KEYS = ("status", "start_time", "end_time", "execution_time", "activation_count")
"""The keys of the routine state the engine books for a finished routine, in order."""

Written = dict[str, tuple[dict[str, Any], "float | str", float]]
"""What the engine's run wrote of each routine's state (see ``RunState.written_states``)."""


class _Kept:
    """A routine state packed as it was stored (other keys than ``_KEYS``, or not a dict)."""

    __slots__ = ("state",)

    def __init__(self, state: Any) -> None:
        self.state = state


class PackedStates(tuple):  # type: ignore[type-arg]  # one flat tuple of every state
    """
    A finished job's routine states, packed in one tuple: for each routine, its id, then
    the values of its state when its keys are ``_KEYS`` in that order (the engine's) and
    its end time is no float, else the state in a ``_Kept``. A state the engine wrote last
    from times it still has keeps those instead of their text: its end time is an epoch
    float, its start time too (unless it was taken over as text), and when it is one
    activation from its start to its end, ``None`` stands for its execution time and
    activation count.
    """

    __slots__ = ()


def _pack(states: dict[str, Any], written: Written | None = None) -> PackedStates:
    items: list[Any] = []
    for rid, state in states.items():
        items.append(rid)
        if state.__class__ is not dict or tuple(state) != _KEYS:
            items.append(_Kept(state))
            continue
        times = written.get(rid) if written else None
        if times is not None and times[0] is state:  # as the engine wrote it
            _, start, stop = times
            seconds, count = state["execution_time"], state["activation_count"]
            one = type(count) is int and count == 1
            if one and isinstance(start, float) and seconds == stop - start:
                items += (state["status"], start, stop, None)  # one activation, start to end
            else:
                items += (state["status"], start, stop, seconds, count)
        elif state["end_time"].__class__ is float:  # would read as an epoch time
            items.append(_Kept(state))
        else:
            items.extend(state.values())
    return PackedStates(items)


def _unpack(packed: PackedStates) -> dict[str, Any]:
    states: dict[str, Any] = {}
    i, end, width = 0, len(packed), len(_KEYS)
    while i < end:
        rid, first = packed[i], packed[i + 1]
        if first.__class__ is _Kept:
            states[rid] = first.state
            i += 2
            continue
        start, stop, seconds = packed[i + 2 : i + 5]
        if stop.__class__ is not float:
            states[rid] = dict(zip(_KEYS, packed[i + 1 : i + 1 + width], strict=True))
            i += 1 + width
            continue
        if seconds is None:
            seconds, count = stop - start, 1
            i += width
        else:
            count = packed[i + width]
            i += 1 + width
        states[rid] = {
            "status": first,
            "start_time": start if start.__class__ is str else iso_of(start),
            "end_time": iso_of(stop),
            "execution_time": seconds,
            "activation_count": count,
        }
    return states


class JobRoutines(JobStatePart):
    """
    The part of a JobState that holds its routine states (:attr:`routine_states`).

    A job packs them when it finishes, unless anyone was given them (the dict of
    :attr:`routine_states`, or one routine's from :meth:`get_routine_state`): then they
    stay as they are, so that a dict handed out is the job's for good. Reading them (or
    any change) unpacks them again.
    """

    __slots__ = ()

    # The job's slots this part uses, declared for type checkers (a part has none).
    if TYPE_CHECKING:

        @property
        def _routine_states(self) -> Any: ...

        @_routine_states.setter
        def _routine_states(self, value: Any) -> None: ...

        @property
        def _states_given(self) -> bool: ...

        @_states_given.setter
        def _states_given(self, value: bool) -> None: ...

        @property
        def _run(self) -> RunState | None: ...

    def _live_states(self) -> dict[str, Any]:
        # With the lock held: the routine states as a dict, unpacked if they were packed.
        states = self._routine_states
        if states.__class__ is PackedStates:
            states = self._routine_states = _unpack(states)
        return states  # type: ignore[no-any-return]  # a dict, or anything a user assigned

    def _pack_states(self) -> None:
        # With the lock held, as the job finishes: pack the routine states if no one has them.
        states = self._routine_states
        if not self._states_given and states.__class__ is dict:
            run = self._run
            self._routine_states = _pack(states, run.written_states() if run else None)

    @property
    def routine_states(self) -> dict[str, dict[str, Any]]:
        """
        Per-routine state dicts, by flow routine id. Assignable.
        """
        with self._lock:
            self._states_given = True
            return self._live_states()

    @routine_states.setter
    def routine_states(self, states: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self._routine_states = states
            self._states_given = True

    def read_routine_states(self) -> dict[str, dict[str, Any]]:
        """
        Return the routine states to read at once (the stored dict, or a new one when the
        job packed them), leaving the job free to pack them: never keep or change it.
        Engine interface.

        .. versionadded:: 0.10
        """
        with self._lock:
            states = self._routine_states
            if states.__class__ is PackedStates:
                return _unpack(states)
            return states  # type: ignore[no-any-return]  # a dict, or anything a user assigned

    def peek_routine_state(self, routine_id: str) -> Any:
        """
        Return the state of ``routine_id`` (or ``None``) to read at once, leaving the job
        free to pack its states (see :meth:`read_routine_states`). Engine interface.

        .. versionadded:: 0.10
        """
        with self._lock:
            return self._live_states().get(routine_id)

    def update_routine_state(self, routine_id: str, state: dict[str, Any]) -> None:
        """
        Replace the state of ``routine_id`` with a shallow copy of ``state``.
        """
        new = dict(state)
        with self._lock:
            states = self._live_states()
            old = states.get(routine_id)
            states[routine_id] = new
            self._updated_at = time.time()
            if self._on_change is not None:
                self._changed(ChangeKind.ROUTINE_STATE, routine_id, old, dict(new), routine_id)

    def merge_routine_state(self, routine_id: str, updates: dict[str, Any]) -> dict[str, Any]:
        """
        Merge ``updates`` into the state of ``routine_id`` atomically and return a copy of
        the result. Keys not in ``updates`` are kept.

        .. versionadded:: 0.10
        """
        with self._lock:
            return dict(self.book_routine_state(routine_id, updates))

    def book_routine_state(self, routine_id: str, updates: dict[str, Any]) -> dict[str, Any]:
        """
        :meth:`merge_routine_state` without the copy: return the stored state itself (the
        engine's bookkeeping, which never changes it). Engine interface.
        """
        with self._lock:
            states = self._live_states()
            old = states.get(routine_id)
            # A state that is not a dict (a user may assign anything) is replaced.
            new = {**old, **updates} if isinstance(old, dict) else dict(updates)
            states[routine_id] = new
            self._updated_at = time.time()
            if self._on_change is not None:
                self._changed(ChangeKind.ROUTINE_STATE, routine_id, old, dict(new), routine_id)
            return new

    def drop_routine_state_keys(self, routine_id: str, stale: dict[str, Any]) -> None:
        """
        Remove the keys of ``stale`` from the state of ``routine_id`` where they still hold
        the values ``stale`` gives (a handler may have written those keys since: they
        stay). Engine interface.
        """
        with self._lock:
            states = self._live_states()
            old = states.get(routine_id)
            if not isinstance(old, dict):
                return
            new = {k: v for k, v in old.items() if k not in stale or stale[k] != v}
            if len(new) != len(old):
                states[routine_id] = new
                if self._on_change is not None:
                    self._changed(ChangeKind.ROUTINE_STATE, routine_id, old, dict(new), routine_id)

    def get_routine_state(self, routine_id: str) -> dict[str, Any] | None:
        """
        Return the state dict of ``routine_id`` (the stored dict itself), or ``None``.
        """
        with self._lock:
            self._states_given = True
            return self._live_states().get(routine_id)
