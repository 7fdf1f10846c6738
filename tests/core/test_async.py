"""
``async def`` handlers and ``await flow.aexecute()``: the cases of research 2.4, and more.

No test sleeps to wait for work: they wait on events and futures. (Handlers that stand for
slow I/O do ``await asyncio.sleep``: that is the work, not a wait for it.)
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from typing import Any

import pytest
from helpers import shut_down_within, within

import routilux
from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, Routine
from routilux.exceptions import ConfigurationError, ExecutionContextError


WAIT = 10.0


def execute(
    flow: Flow, *args: Any, context: contextvars.Context | None = None, **kwargs: Any
) -> JobState:
    """``flow.execute`` on another thread (in ``context``, when given), waited for at most
    WAIT s: a job that never ends fails the test instead of hanging it."""
    what = f"execute of flow {flow.flow_id!r} to return"
    if context is not None:
        return within(WAIT, what, context.run, flow.execute, *args, **kwargs)
    return within(WAIT, what, flow.execute, *args, **kwargs)


"""Seconds a test waits at most for an event before it fails (never reached when green)."""

WORKERS = "wrk"
"""Thread-name prefix of the worker pools of these tests."""

REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="unset")


def wait(event: threading.Event) -> None:
    assert event.wait(WAIT), "timed out waiting for the event"


class Log:
    """A thread-safe list of what happened, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        with self._lock:
            self.items.append(item)


class Step(Routine):
    """
    A sync or async step: logs (name, value, thread), optionally fails once per value it
    is told to, and emits ``out`` with ``value + 1``.
    """

    def __init__(self, name: str, log: Log, is_async: bool, fail_on: Any = None) -> None:
        super().__init__()
        self.name = name
        self.log = log
        self.fail_on = fail_on
        self.define_slot("trigger", handler=self.arun if is_async else self.run)
        self.define_event("out", ["value"])

    def _step(self, value: int) -> None:
        self.log.add((self.name, value))
        if value == self.fail_on:
            msg = f"{self.name} fails on {value}"
            raise ValueError(msg)
        self.emit("out", value=value + 1)

    def run(self, value: int = 0) -> None:
        self._step(value)

    async def arun(self, value: int = 0) -> None:
        await asyncio.sleep(0)
        self._step(value)


def mixed_flow(kinds: str, strategy: str, log: Log, fail_on: Any = None) -> Flow:
    """
    ``a -> b -> (c, d)`` fan-out; ``kinds`` says which steps are async (``"s"``/``"a"``
    per step), so ``"sass"`` is sync -> async -> sync fan-out.
    """
    flow = Flow(
        flow_id="mixed", execution_strategy=strategy, max_workers=3, thread_name_prefix=WORKERS
    )
    for name, kind in zip("abcd", kinds, strict=True):
        flow.add_routine(Step(name, log, kind == "a", fail_on if name == "b" else None), name)
    flow.connect("a", "out", "b", "trigger")
    flow.connect("b", "out", "c", "trigger")
    flow.connect("b", "out", "d", "trigger")
    return flow


def summary(js: JobState) -> dict[str, Any]:
    """What must not depend on the lane: status, records and routine states (no times)."""
    records = [
        (
            r.routine_id,
            r.event_name,
            {k: v for k, v in r.data.items() if k not in ("execution_time", "traceback")},
        )
        for r in js.get_execution_history()
    ]
    states = {
        rid: {k: v for k, v in state.items() if not k.endswith("_time")}
        for rid, state in js.routine_states.items()
    }
    return {"status": js.status, "records": records, "states": states}


def run_in_background(coro_fn: Any) -> Any:
    """Run an ``async def`` on a loop of its own in a fresh thread (as an app would)."""
    out: dict[str, Any] = {}

    def main() -> None:
        try:
            out["result"] = asyncio.run(coro_fn())
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=main, name="app-loop", daemon=True)
    thread.start()
    thread.join(WAIT * 3)
    assert not thread.is_alive()
    if "error" in out:
        raise out["error"]
    return out["result"]


class TestLanes:
    def test_async_handlers_never_run_on_worker_threads(self) -> None:
        """Coroutines run on routilux-async under execute, on the caller's loop under aexecute."""
        log = Log()
        threads: list[tuple[str, str]] = []

        class Where(Step):
            def _step(self, value: int) -> None:
                threads.append((self.name, threading.current_thread().name))
                super()._step(value)

        flow = Flow(execution_strategy="concurrent", max_workers=2, thread_name_prefix=WORKERS)
        flow.add_routine(Where("a", log, False), "a")
        flow.add_routine(Where("b", log, True), "b")
        flow.add_routine(Where("c", log, True), "c")
        flow.connect("a", "out", "b", "trigger")
        flow.connect("b", "out", "c", "trigger")
        with shut_down_within(flow):
            assert "completed" == execute(flow, "a", {"value": 0}).status

            async def main() -> str:
                js = await flow.aexecute("a", {"value": 0}, timeout=WAIT)
                assert "completed" == js.status
                return threading.current_thread().name

            caller = run_in_background(main)
        by_name: dict[str, list[str]] = {}
        for name, thread in threads:
            by_name.setdefault(name, []).append(thread)
        assert all(t.startswith(WORKERS) for t in by_name["a"])
        assert ["routilux-async", caller] == by_name["b"]
        assert ["routilux-async", caller] == by_name["c"]

    def test_one_loop_for_every_activation_job_and_flow(self) -> None:
        """Every coroutine of every execute() of every flow runs on one loop."""
        loops: set[int] = set()

        class Probe(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)
                self.define_event("out")

            async def run(self, value: int = 0) -> None:
                loops.add(id(asyncio.get_running_loop()))
                if value < 3:
                    self.emit("out", value=value + 1)

        flows = []
        for strategy in ("sequential", "concurrent"):
            flow = Flow(execution_strategy=strategy)
            flow.add_routine(Probe(), "p")
            flow.connect("p", "out", "p", "trigger")
            flows.append(flow)
        for flow in flows:
            for _ in range(3):
                assert "completed" == execute(flow, "p", {"value": 0}).status
            flow.shutdown()
        assert 1 == len(loops)

    def test_loop_bound_object_survives_across_executes(self) -> None:
        """A loop-bound object made in the first execute() works in the second (no new loop)."""

        class Client:
            """Stands for an httpx.AsyncClient: its queue binds to a loop on first wait."""

            def __init__(self) -> None:
                self.queue: asyncio.Queue[int] | None = None

            async def get(self, value: int) -> int:
                if self.queue is None:
                    self.queue = asyncio.Queue()
                waiter = asyncio.ensure_future(self.queue.get())
                await asyncio.sleep(0)  # the get() waits, which binds the queue to this loop
                self.queue.put_nowait(value * 10)
                return await waiter

        client = Client()
        results: list[int] = []

        class UsesClient(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)

            async def run(self, value: int) -> None:
                results.append(await client.get(value))

        flow = Flow()
        flow.add_routine(UsesClient(), "u")
        with shut_down_within(flow):
            for value in (1, 2, 3):
                assert "completed" == execute(flow, "u", {"value": value}).status
        assert [10, 20, 30] == results

    def test_aexecute_runs_coroutines_on_the_callers_loop(self) -> None:
        """Under aexecute, get_running_loop() in a handler is the caller's loop."""
        seen: list[asyncio.AbstractEventLoop] = []

        class Probe(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)

            async def run(self) -> None:
                seen.append(asyncio.get_running_loop())

        flow = Flow()
        flow.add_routine(Probe(), "p")

        async def main() -> bool:
            js = await flow.aexecute("p", timeout=WAIT)
            return js.status == "completed" and seen == [asyncio.get_running_loop()]

        with shut_down_within(flow):
            assert asyncio.run(main())

    def test_standalone_async_slot_runs_on_background_loop(self) -> None:
        """Slot.receive of an async handler on a plain thread runs it to completion."""
        got: list[tuple[Any, str]] = []

        async def handler(value: Any) -> None:
            await asyncio.sleep(0)
            got.append((value, threading.current_thread().name))

        routine = Routine()
        slot = routine.define_slot("in", handler=handler)
        slot.receive({"value": 7})
        assert [(7, "routilux-async")] == got

    def test_standalone_async_slot_refused_on_a_loop(self) -> None:
        """Slot.receive of an async handler on a loop's thread raises instead of blocking."""
        calls: list[Any] = []

        async def handler(value: Any) -> None:
            calls.append(value)

        routine = Routine()
        slot = routine.define_slot("in", handler=handler)

        async def main() -> None:
            slot.receive({"value": 1})

        with pytest.raises(ExecutionContextError, match="event loop"):
            asyncio.run(main())
        assert [] == calls


class TestSameAsSync:
    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    @pytest.mark.parametrize("kinds", ["sass", "aaaa", "asas"])
    def test_mixed_flow_matches_all_sync_twin(self, strategy: str, kinds: str) -> None:
        """Records, routine states, status and (sequential) order equal the all-sync twin's."""
        twin_log, log = Log(), Log()
        with (
            mixed_flow("ssss", strategy, twin_log) as twin,
            mixed_flow(kinds, strategy, log) as flow,
        ):
            expected = summary(execute(twin, "a", {"value": 0}))
            actual = summary(execute(flow, "a", {"value": 0}))
        if strategy == "sequential":
            assert twin_log.items == log.items
            assert expected == actual
        else:
            assert sorted(twin_log.items) == sorted(log.items)
            assert expected["status"] == actual["status"]
            assert sorted(map(repr, expected["records"])) == sorted(map(repr, actual["records"]))
            assert expected["states"] == actual["states"]

    @pytest.mark.parametrize(
        "strategy", [ErrorStrategy.CONTINUE, ErrorStrategy.STOP, ErrorStrategy.SKIP]
    )
    def test_error_strategies_match_all_sync_twin(self, strategy: ErrorStrategy) -> None:
        """A failing async step is handled by the error strategy exactly as a sync one."""
        twin_log, log = Log(), Log()
        with (
            mixed_flow("ssss", "sequential", twin_log, fail_on=1) as twin,
            mixed_flow("sass", "sequential", log, fail_on=1) as flow,
        ):
            twin.routines["b"].set_error_handler(ErrorHandler(strategy=strategy))
            flow.routines["b"].set_error_handler(ErrorHandler(strategy=strategy))
            expected = summary(execute(twin, "a", {"value": 0}))
            actual = summary(execute(flow, "a", {"value": 0}))
        assert twin_log.items == log.items
        assert expected == actual

    def test_aexecute_matches_execute(self) -> None:
        """aexecute gives the same records and states as execute."""
        log_a, log_b = Log(), Log()
        with (
            mixed_flow("sass", "sequential", log_a) as one,
            mixed_flow("sass", "sequential", log_b) as two,
        ):
            expected = summary(execute(one, "a", {"value": 0}))

            async def main() -> dict[str, Any]:
                return summary(await two.aexecute("a", {"value": 0}, timeout=WAIT))

            assert expected == asyncio.run(main())
        assert log_a.items == log_b.items

    def test_sequential_async_blocks_the_next_activation(self) -> None:
        """In a sequential job, a sibling waits until the running coroutine has finished."""
        log = Log()

        class Slow(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)

            async def run(self, value: int) -> None:
                log.add("slow:start")
                await asyncio.sleep(0.02)
                log.add("slow:end")

        class Fast(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)

            def run(self, value: int) -> None:
                log.add("fast")

        flow = Flow(execution_strategy="sequential")
        flow.add_routine(Step("a", Log(), False), "a")
        flow.add_routine(Slow(), "slow")
        flow.add_routine(Fast(), "fast")
        flow.connect("a", "out", "slow", "trigger")
        flow.connect("a", "out", "fast", "trigger")
        with shut_down_within(flow):
            assert "completed" == execute(flow, "a", {"value": 0}).status
        assert ["slow:start", "slow:end", "fast"] == log.items

    def test_retry_of_async_handler_runs_on_the_loop(self) -> None:
        """RETRY re-runs a coroutine after its delay (on the flow's timer) on the loop."""
        calls: list[str] = []

        class Flaky(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)

            async def run(self) -> None:
                calls.append(threading.current_thread().name)
                if len(calls) < 3:
                    msg = "not yet"
                    raise ConnectionError(msg)

        flow = Flow()
        flow.add_routine(Flaky(), "f")
        flow.routines["f"].set_error_handler(
            ErrorHandler(
                strategy=ErrorStrategy.RETRY, max_retries=3, retry_delay=0.01, retry_backoff=1.0
            )
        )
        with shut_down_within(flow):
            js = execute(flow, "f")
            assert "completed" == js.status
        assert ["routilux-async"] * 3 == calls
        assert 2 == js.routine_states["f"]["retry_count"]


class TestControl:
    def test_cancel_delivers_cancelled_error_and_runs_cleanup(self) -> None:
        """Cancel: the handler sees CancelledError at its await, cleans up, nothing is left."""
        entered, cleaned = threading.Event(), threading.Event()
        seen: list[str] = []

        class Waits(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)

            async def run(self) -> None:
                entered.set()
                try:
                    await asyncio.Event().wait()  # never set
                except asyncio.CancelledError:
                    seen.append("cancelled")
                    raise
                finally:
                    cleaned.set()

        flow = Flow()
        flow.add_routine(Waits(), "w")
        with shut_down_within(flow):
            js = flow.submit("w")
            wait(entered)
            flow.cancel(js, reason="user")
            wait(cleaned)
            idle = threading.Event()
            run = js._run
            assert run is not None
            run.when(lambda: run.in_flight == 0, idle.set)
            wait(idle)
            assert "cancelled" == js.status
            assert ["cancelled"] == seen
            assert set() == run.coros
            assert "cancelled" == js.routine_states["w"]["status"]

    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_pause_requeues_running_coroutine_and_resume_reruns_it_once(
        self, strategy: str
    ) -> None:
        """Pause cancels and re-queues a running coroutine; resume runs it exactly once more."""
        entered = threading.Event()
        keys: list[str | None] = []
        interrupted: list[str] = []

        class Once(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)
                self.define_event("out")

            async def run(self, value: int) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                keys.append(ctx.idempotency_key)
                if len(keys) == 1:
                    entered.set()
                    try:
                        await asyncio.Event().wait()
                    except asyncio.CancelledError:
                        interrupted.append("paused")
                        raise
                self.emit("out", value=value + 1)

        log = Log()
        flow = Flow(flow_id="pz", execution_strategy=strategy)
        flow.add_routine(Once(), "o")
        flow.add_routine(Step("after", log, False), "after")
        flow.connect("o", "out", "after", "trigger")
        with shut_down_within(flow):
            js = flow.submit("o", {"value": 1})
            wait(entered)
            flow.pause(js, reason="deploy")
            assert "paused" == js.status
            assert ["paused"] == interrupted
            assert [("o", "trigger")] == [
                (t["slot_routine_id"], t["slot_name"]) for t in js.pending_tasks
            ]
            assert "interrupted" == js.routine_states["o"]["status"]
            flow.resume(js)
            assert js.wait_for_completion(WAIT)
        assert "completed" == js.status
        assert 2 == len(keys)
        assert keys[0] == keys[1]
        assert [("after", 2)] == log.items

    def test_resume_from_json_on_a_fresh_flow(self) -> None:
        """A job paused with a running coroutine resumes from JSON on other objects."""
        entered = threading.Event()
        runs: list[str] = []

        class Once(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)

            async def run(self, value: int) -> None:
                runs.append(f"run{value}")
                if len(runs) == 1:
                    entered.set()
                    await asyncio.Event().wait()

        def build() -> Flow:
            flow = Flow(flow_id="host")
            flow.add_routine(Once(), "o")
            return flow

        with shut_down_within(build()) as here:
            js = here.submit("o", {"value": 5})
            wait(entered)
            here.pause(js)
            data = json.loads(json.dumps(js.serialize()))
        copy = JobState("host")
        copy.deserialize(data)
        with shut_down_within(build()) as there:
            there.resume(copy)
            assert copy.wait_for_completion(WAIT)
        assert "completed" == copy.status
        assert ["run5", "run5"] == runs

    def test_execute_inside_a_running_loop_raises(self) -> None:
        """execute() on a loop's thread raises ExecutionContextError pointing to aexecute."""
        flow = Flow()
        flow.add_routine(Step("a", Log(), True), "a")

        async def main() -> None:
            flow.execute("a")

        with flow, pytest.raises(ExecutionContextError, match="aexecute"):
            asyncio.run(main())

    def test_aexecute_timeout_returns_the_running_job(self) -> None:
        """aexecute(timeout=...) returns the running JobState when the time is up."""
        release: list[asyncio.Event] = []

        class Waits(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)

            async def run(self) -> None:
                await release[0].wait()

        flow = Flow()
        flow.add_routine(Waits(), "w")

        async def main() -> tuple[str, str]:
            release.append(asyncio.Event())
            js = await flow.aexecute("w", timeout=0.05)
            first = js.status
            release[0].set()
            done = asyncio.get_running_loop().create_future()
            run = js._run
            assert run is not None
            loop = asyncio.get_running_loop()
            run.when(run.is_settled, lambda: loop.call_soon_threadsafe(done.set_result, None))
            await done
            return first, js.status

        with shut_down_within(flow):
            assert ("running", "completed") == asyncio.run(main())

    def test_aexecute_rejects_unknown_on_cancel(self) -> None:
        """on_cancel accepts only 'cancel' and 'pause'."""
        flow = Flow()
        flow.add_routine(Step("a", Log(), True), "a")
        with flow, pytest.raises(ConfigurationError):
            asyncio.run(flow.aexecute("a", on_cancel="ignore"))

    @pytest.mark.parametrize(
        ("on_cancel", "status"), [("cancel", "cancelled"), ("pause", "paused")]
    )
    def test_cancelling_the_aexecute_task(self, on_cancel: str, status: str) -> None:
        """Cancelling the awaiting task cancels (or pauses) the job; the handler cleans up."""
        cleanups: list[str] = []

        async def main() -> JobState:
            entered = asyncio.Event()

            class Waits(Routine):
                def __init__(self) -> None:
                    super().__init__()
                    self.define_slot("trigger", handler=self.run)

                async def run(self) -> None:
                    entered.set()
                    try:
                        await asyncio.Event().wait()
                    finally:
                        cleanups.append("done")

            flow = Flow(flow_id="ac")
            flow.add_routine(Waits(), "w")
            js = JobState("ac")
            task = asyncio.ensure_future(
                flow.aexecute("w", job_state=js, on_cancel=on_cancel, cancel_timeout=3)
            )
            await entered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            flow.shutdown(wait=False)
            return js

        js = asyncio.run(main())
        assert status == js.status
        assert ["done"] == cleanups
        if on_cancel == "pause":
            assert ["w"] == [t["slot_routine_id"] for t in js.pending_tasks]


class TestBridgeAndContext:
    def test_run_async_from_a_sync_handler(self) -> None:
        """A sync handler calls async code with run_async, on the job's loop."""
        got: list[Any] = []

        async def fetch(value: int) -> tuple[int, str]:
            await asyncio.sleep(0)
            return value * 2, threading.current_thread().name

        class Bridge(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)

            def run(self, value: int) -> None:
                got.append(routilux.run_async(fetch(value)))

        flow = Flow(thread_name_prefix=WORKERS)
        flow.add_routine(Bridge(), "b")
        with shut_down_within(flow):
            execute(flow, "b", {"value": 4})

            async def main() -> str:
                js = await flow.aexecute("b", {"value": 5}, timeout=WAIT)
                assert "completed" == js.status
                return threading.current_thread().name

            caller = run_in_background(main)
        assert [(8, "routilux-async"), (10, caller)] == got

    def test_run_async_refuses_on_the_loop_thread(self) -> None:
        """run_async on a loop's thread raises instead of deadlocking (and closes the coro)."""
        errors: list[BaseException] = []

        async def nothing() -> None:
            return None

        class Misuse(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)

            async def run(self) -> None:
                try:
                    routilux.run_async(nothing())
                except ExecutionContextError as exc:
                    errors.append(exc)

        flow = Flow()
        flow.add_routine(Misuse(), "m")
        with shut_down_within(flow):
            assert "completed" == execute(flow, "m").status
        assert 1 == len(errors)
        assert "event loop" in str(errors[0])

        async def main() -> None:
            routilux.run_async(nothing())

        with pytest.raises(ExecutionContextError):
            asyncio.run(main())

    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_contextvars_reach_both_lanes(self, strategy: str) -> None:
        """A contextvar set before execute/aexecute is visible in sync and async handlers."""
        seen = Log()

        class Reads(Routine):
            def __init__(self, is_async: bool) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.arun if is_async else self.run)
                self.define_event("out")

            def run(self) -> None:
                seen.add(("sync", REQUEST.get()))
                self.emit("out")

            async def arun(self) -> None:
                seen.add(("async", REQUEST.get()))
                self.emit("out")

        flow = Flow(execution_strategy=strategy, max_workers=2)
        flow.add_routine(Reads(False), "s")
        flow.add_routine(Reads(True), "a")
        flow.add_routine(Reads(False), "s2")
        flow.connect("s", "out", "a", "trigger")
        flow.connect("a", "out", "s2", "trigger")

        def from_thread() -> None:
            REQUEST.set("req-exec")
            # The caller's contextvars are the point: the bounded execute runs in a copy.
            execute(flow, "s", context=contextvars.copy_context())
            REQUEST.set("req-submit")
            js = flow.submit("s")
            assert js.wait_for_completion(WAIT)

        async def main() -> None:
            REQUEST.set("req-aexec")
            assert "completed" == (await flow.aexecute("s", timeout=WAIT)).status

        with shut_down_within(flow):
            contextvars.copy_context().run(from_thread)
            asyncio.run(main())
        expected = [
            (kind, req)
            for req in ("req-exec", "req-submit", "req-aexec")
            for kind in ("sync", "async", "sync")
        ]
        assert expected == seen.items
        assert "unset" == REQUEST.get()


class _FanOut(Routine):
    """Entry routine: emits ``out`` with values 0 .. total-1."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.define_slot("trigger", handler=self.run)
        self.define_event("out")

    def run(self) -> None:
        for i in range(self.total):
            self.emit("out", value=i)


def _peak_of_coroutines(limit: int, total: int, max_async: int) -> tuple[str, int, int]:
    """Run ``total`` coroutines on two workers; the first ``limit`` wait until all of them
    are in flight at once. Return the job status, the peak and the activation count."""
    state = {"active": 0, "peak": 0}
    full: list[asyncio.Event] = []

    class Counted(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.run)

        async def run(self, value: int) -> None:
            if not full:
                full.append(asyncio.Event())
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
            if state["active"] == limit:
                full[0].set()
            await full[0].wait()  # the first ones wait until `limit` are in flight
            await asyncio.sleep(0)
            state["active"] -= 1

    flow = Flow(execution_strategy="concurrent", max_workers=2, max_async=max_async)
    flow.add_routine(_FanOut(total), "src")
    flow.add_routine(Counted(), "c")
    flow.connect("src", "out", "c", "trigger")
    with shut_down_within(flow):
        js = execute(flow, "src")
    return js.status, state["peak"], js.routine_states["c"]["activation_count"]


class TestBounds:
    def test_max_async_bounds_concurrent_coroutines(self) -> None:
        """No more than max_async coroutine activations of a flow run at once."""
        assert ("completed", 3, 12) == _peak_of_coroutines(limit=3, total=12, max_async=3)

    def test_coroutines_do_not_hold_worker_threads(self) -> None:
        """With 2 workers, 50 coroutines are in flight at once: none holds a thread."""
        status, peak, count = _peak_of_coroutines(limit=50, total=200, max_async=200)
        assert ("completed", 200) == (status, count)
        assert peak >= 50
