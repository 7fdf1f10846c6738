"""
Every code example of the JobState guide (shared/seeds/jobstate-guide.rst), run as written.

Each test holds one example verbatim (with the names it expects from earlier examples set
up by fixtures) and checks what the guide says it prints or asserts. Where our design
decides differently from the guide (ARCHITECTURE.md section 10), the test says so in one line.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import Any

import pytest

from routilux import Flow, JobState, QueueOutputHandler, Routine


class Source(Routine):
    def __init__(self):
        super().__init__()
        self.trigger_slot = self.define_slot("trigger", handler=self.send)
        self.output_event = self.define_event("output", ["data"])

    def send(self, **kwargs):
        self.emit("output", data="test")


@pytest.fixture
def guide() -> Any:
    """The names the guide's first example defines: flow, source_id."""
    flow = Flow(flow_id="my_flow")
    source = Source()
    source_id = flow.add_routine(source, "source")
    yield flow, source_id
    flow.shutdown()


def test_creating_job_state(capsys: pytest.CaptureFixture[str]) -> None:
    """The first example prints a job id, status completed and the flow id."""
    flow = Flow(flow_id="my_flow")
    source = Source()
    source_id = flow.add_routine(source, "source")

    # Execute returns a JobState
    job_state = flow.execute(source_id)

    print(f"Job ID: {job_state.job_id}")
    print(f"Status: {job_state.status}")
    print(f"Flow ID: {job_state.flow_id}")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Job ID: ") and len(lines[0]) == len("Job ID: ") + 36
    assert lines[1:] == ["Status: completed", "Flow ID: my_flow"]


def test_multiple_independent_executions(guide: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Three executes give three JobStates with their own history."""
    flow, source_id = guide
    job_state1 = flow.execute(source_id, entry_params={"value": "A"})
    job_state2 = flow.execute(source_id, entry_params={"value": "B"})
    job_state3 = flow.execute(source_id, entry_params={"value": "C"})

    assert job_state1.job_id != job_state2.job_id
    assert job_state2.job_id != job_state3.job_id
    assert job_state1 is not job_state2  # Different objects

    print(f"Execution 1 history: {len(job_state1.execution_history)} records")
    print(f"Execution 2 history: {len(job_state2.execution_history)} records")
    print(f"Execution 3 history: {len(job_state3.execution_history)} records")
    assert capsys.readouterr().out.splitlines() == [
        f"Execution {i} history: 3 records" for i in (1, 2, 3)
    ]
    assert job_state1.execution_history[0].data == {"value": "A"}
    assert job_state2.execution_history[0].data == {"value": "B"}


def test_accessing_execution_history(guide: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """History: start, output, completed, all under the source routine."""
    flow, source_id = guide
    job_state = flow.execute(source_id)

    all_records = job_state.execution_history
    print(f"Total records: {len(all_records)}")

    source_records = job_state.get_execution_history("source")
    print(f"Source records: {len(source_records)}")

    for record in job_state.execution_history:
        print(f"{record.timestamp}: {record.routine_id} -> {record.event_name}")
        print(f"  Data: {record.data}")

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Total records: 3"
    # ARCHITECTURE 10: all three records belong to the source ("Source records: 2" is a typo).
    assert out[1] == "Source records: 3"
    events = [line.split(": ", 1)[1] for line in out[2::2]]
    assert events == ["source -> start", "source -> output", "source -> completed"]
    assert out[3] == "  Data: {}"
    assert out[5] == "  Data: {'data': 'test'}"
    # The completed record carries the job's execution time (a timing, like the timestamps).
    assert out[7].startswith("  Data: {'execution_time': ")


def test_accessing_routine_states(guide: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The entry routine has a state; update_routine_state replaces it."""
    flow, source_id = guide
    job_state = flow.execute(source_id)

    source_state = job_state.get_routine_state("source")
    if source_state:
        print(f"Source status: {source_state.get('status')}")
        print(f"Source metadata: {source_state}")

    job_state.update_routine_state(
        "source", {"status": "completed", "execution_time": 0.5, "custom_field": "value"}
    )

    updated_state = job_state.get_routine_state("source")
    print(f"Updated state: {updated_state}")

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Source status: completed"
    assert out[1].startswith("Source metadata: {'status': 'completed'")
    assert out[2] == (
        "Updated state: {'status': 'completed', 'execution_time': 0.5, 'custom_field': 'value'}"
    )


class Processor(Routine):
    def process(self, data=None, **kwargs):
        ctx = self.get_execution_context()
        if ctx:
            ctx.job_state.update_routine_state(ctx.routine_id, {"processed": True})
            ctx.job_state.update_shared_data("last_item", data)
            self.send_output("user_data", message="Processed", value=data)


class DataCollector(Routine):
    def process(self, data=None, **kwargs):
        ctx = self.get_execution_context()
        if ctx:
            ctx.job_state.update_shared_data("items", data)
            items = ctx.job_state.get_shared_data("items", default=[])
            ctx.job_state.update_shared_data("count", len(items))


class Logger(Routine):
    def process(self, data=None, **kwargs):
        ctx = self.get_execution_context()
        if ctx:
            ctx.job_state.append_to_shared_log(
                {"timestamp": datetime.now().isoformat(), "action": "process", "data": data}
            )
            log = ctx.job_state.get_shared_log()
            print(f"Total log entries: {len(log)}")


class DataProcessor(Routine):
    def process(self, data=None, **kwargs):
        self.send_output("user_data", message="Processing", value=data)
        self.send_output("status", progress=50, status="in_progress")


def _wire(cls: type[Routine]) -> tuple[Flow, Routine]:
    """Connect the guide's handler-only routine after a Source, as a user would."""
    routine = cls()
    routine.define_slot("input", handler=routine.process)
    flow = Flow(flow_id="my_flow")
    flow.add_routine(Source(), "source")
    flow.add_routine(routine, "worker")
    flow.connect("source", "output", "worker", "input")
    return flow, routine


def test_execution_context_example() -> None:
    """Processor updates its state and shared data and sends output through the context."""
    flow, _ = _wire(Processor)
    job_state = flow.execute("source")
    assert job_state.get_routine_state("worker")["processed"] is True
    assert job_state.get_shared_data("last_item") == "test"
    assert job_state.output_log[0]["data"] == {"message": "Processed", "value": "test"}


def test_shared_data_example() -> None:
    """DataCollector stores, reads and counts."""
    flow, _ = _wire(DataCollector)
    job_state = flow.execute("source")
    assert job_state.shared_data["items"] == "test"
    assert job_state.shared_data["count"] == 4


def test_shared_log_example(capsys: pytest.CaptureFixture[str]) -> None:
    """Logger appends to the shared log and reads it back."""
    flow, _ = _wire(Logger)
    job_state = flow.execute("source")
    assert capsys.readouterr().out == "Total log entries: 1\n"
    assert job_state.shared_log[0]["action"] == "process"


def test_sending_output_example() -> None:
    """Output reaches the handler of the JobState the job runs in."""
    flow, _ = _wire(DataProcessor)
    entry_id = "source"
    job_state = JobState(flow_id="my_flow")
    job_state.set_output_handler(QueueOutputHandler())
    # ARCHITECTURE 10: the prepared JobState is passed with job_state= (the guide omits it).
    flow.execute(entry_id, job_state=job_state)

    q = job_state.output_handler.queue
    items = [q.get_nowait() for _ in range(q.qsize())]
    assert [i["output_type"] for i in items] == ["user_data", "status"]
    assert items[1]["data"] == {"progress": 50, "status": "in_progress"}


class UserInteraction(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.process)
        self.define_event("user_input_required", ["question"])

    def process(self, data=None, **kwargs):
        self.emit_deferred_event("user_input_required", question="What is your name?")
        ctx = self.get_execution_context()
        if ctx:
            ctx.flow.pause(ctx.job_state, reason="Waiting for user input")


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_deferred_events_example(strategy: str) -> None:
    """Emit deferred then pause: the job pauses; resume emits the event downstream."""
    received: list[dict[str, Any]] = []
    flow = Flow(flow_id="my_flow", execution_strategy=strategy)
    flow.add_routine(UserInteraction(), "ask")
    sink = Routine()
    sink.define_slot("in", handler=lambda **kw: received.append(kw))
    flow.add_routine(sink, "sink")
    flow.connect("ask", "user_input_required", "sink", "in")
    job_state = flow.execute("ask")
    assert job_state.status == "paused"
    assert job_state.deferred_events[0]["event_name"] == "user_input_required"
    assert job_state.pause_points[-1]["reason"] == "Waiting for user input"

    flow.resume(job_state)

    assert job_state.wait_for_completion(timeout=10)
    assert job_state.status == "completed"
    assert received == [{"question": "What is your name?"}]
    assert job_state.deferred_events == []


def test_status_transitions(guide: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Status after execute, then after waiting."""
    flow, source_id = guide
    job_state = flow.execute(source_id)
    print(f"Initial status: {job_state.status}")  # "running"
    assert flow.wait_for_completion(timeout=5.0), "a job of the flow is still running"
    print(f"Final status: {job_state.status}")  # "completed" or "failed"
    # ARCHITECTURE 3: execute blocks until the job is done, so it is already "completed".
    assert capsys.readouterr().out.splitlines() == [
        "Initial status: completed",
        "Final status: completed",
    ]


def test_pause_resume_cancel(guide: Any) -> None:
    """The guide's pause/resume/cancel block, with its assertions."""
    flow, source_id = guide
    job_state = flow.execute(source_id)
    flow.pause(job_state, reason="Manual pause for inspection")
    assert job_state.status == "paused"
    resumed_job_state = flow.resume(job_state)
    assert flow.wait_for_completion(timeout=5.0), "a job of the flow is still running"
    assert resumed_job_state.status == "completed"
    another_job_state = flow.execute(source_id)
    flow.cancel(another_job_state, reason="No longer needed")
    assert another_job_state.status == "cancelled"
    # ARCHITECTURE 10: resume returns the same JobState.
    assert resumed_job_state is job_state


def test_serialization_and_persistence(guide: Any, tmp_path: Any, monkeypatch: Any) -> None:
    """Execute, pause, save as JSON, load into a new JobState, resume."""
    flow, source_id = guide
    monkeypatch.chdir(tmp_path)
    job_state = flow.execute(source_id)
    flow.pause(job_state, reason="Save for later")

    job_state_data = job_state.serialize()
    with open("job_state.json", "w") as f:
        json.dump(job_state_data, f, indent=2)

    with open("job_state.json") as f:
        loaded_data = json.load(f)

    new_job_state = JobState()
    new_job_state.deserialize(loaded_data)

    resumed = flow.resume(new_job_state)
    assert resumed is new_job_state
    assert resumed.wait_for_completion(timeout=5)
    assert resumed.status == "completed"
    assert resumed.job_id == job_state.job_id


def test_thread_identification(capsys: pytest.CaptureFixture[str]) -> None:
    """In a concurrent flow the entry handler runs on a pool worker thread."""

    class ThreadAwareRoutine(Routine):
        def __init__(self, name):
            super().__init__()
            self.name = name
            self.trigger_slot = self.define_slot("trigger", handler=self.process)

        def process(self, **kwargs):
            thread_name = threading.current_thread().name
            print(f"[{self.name}] Executing in thread: {thread_name}")
            flow = getattr(self, "_current_flow", None)
            if flow:
                job_state = getattr(flow._current_execution_job_state, "value", None)
                if job_state:
                    job_state.record_execution(self._id, "process", {"thread": thread_name})

    flow = Flow(flow_id="thread_demo", execution_strategy="concurrent", max_workers=2)
    routine = ThreadAwareRoutine("Processor")
    routine_id = flow.add_routine(routine, "processor")

    print(f"Execution thread: {threading.current_thread().name}")
    job_state = flow.execute(routine_id)
    assert flow.wait_for_completion(timeout=5.0), "a job of the flow is still running"

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Execution thread: MainThread"
    # The pool number is an id: "ThreadPoolExecutor-0_0" in a fresh process.
    assert out[1].startswith("[Processor] Executing in thread: ThreadPoolExecutor-")
    assert out[1].endswith("_0")
    assert [r.event_name for r in job_state.get_execution_history("processor")] == [
        "start",
        "process",
        "completed",
    ]
    flow.shutdown()


def test_task_level_job_state_snippets() -> None:
    """The SlotActivationTask and execute_task snippets run as written."""
    from routilux.flow import SlotActivationTask

    slot = Routine().define_slot("input")
    data: dict[str, Any] = {"x": 1}
    job_state = JobState("f")
    connection = None
    task = SlotActivationTask(
        slot=slot,
        data=data,
        job_state=job_state,  # JobState is explicitly passed
        connection=connection,
    )
    assert task.job_state is job_state and task.created_at is not None


class GuideSource(Routine):
    def __init__(self, name):
        super().__init__()
        self.name = name
        self.trigger_slot = self.define_slot("trigger", handler=self.send)
        self.output_event = self.define_event("output", ["data"])

    def send(self, **kwargs):
        flow = getattr(self, "_current_flow", None)
        if flow:
            job_state = getattr(flow._current_execution_job_state, "value", None)
            if job_state:
                thread_name = threading.current_thread().name
                job_state.record_execution(
                    self._id, "output", {"data": f"from {self.name}", "thread": thread_name}
                )
        time.sleep(0.1)  # Simulate work (the guide's own handler)
        self.emit("output", data=f"from {self.name}")


class GuideProcessor(Routine):
    def __init__(self, name):
        super().__init__()
        self.name = name
        self.input_slot = self.define_slot("input", handler=self.process)

    def process(self, data=None, **kwargs):
        flow = getattr(self, "_current_flow", None)
        if flow:
            job_state = getattr(flow._current_execution_job_state, "value", None)
            if job_state:
                thread_name = threading.current_thread().name
                job_state.record_execution(self._id, "input", {"data": data, "thread": thread_name})


def test_scenarios_1_and_2() -> None:
    """Sequential executions in one thread, and concurrent ones from five threads."""
    flow = Flow(flow_id="scenarios")
    entry_id = flow.add_routine(Source(), "entry")

    job_state1 = flow.execute(entry_id, entry_params={"task": "A"})
    assert flow.wait_for_completion(timeout=5.0), "a job of the flow is still running"
    job_state2 = flow.execute(entry_id, entry_params={"task": "B"})
    assert flow.wait_for_completion(timeout=5.0), "a job of the flow is still running"
    assert job_state1.job_id != job_state2.job_id
    assert job_state1 is not job_state2

    def run_execution(flow, entry_id, task_name):
        job_state = flow.execute(entry_id, entry_params={"task": task_name})
        assert flow.wait_for_completion(timeout=5.0), "a job of the flow is still running"
        return job_state

    threads = []
    job_states = {}
    for i in range(5):
        t = threading.Thread(
            target=lambda i=i: job_states.update({i: run_execution(flow, entry_id, f"Task{i}")}),
            name=f"ExecThread{i}",
        )
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
    job_ids = {js.job_id for js in job_states.values()}
    assert len(job_ids) == 5
    for i, js in job_states.items():
        assert js.execution_history[0].data == {"task": f"Task{i}"}


def test_scenario_3_same_worker_thread(capsys: pytest.CaptureFixture[str]) -> None:
    """One worker serves two executions; each JobState holds only its own records."""
    flow = Flow(flow_id="isolation_test", execution_strategy="concurrent", max_workers=1)
    source1 = GuideSource("Source1")
    source2 = GuideSource("Source2")
    processor1 = GuideProcessor("Processor1")
    processor2 = GuideProcessor("Processor2")
    s1_id = flow.add_routine(source1, "s1")
    s2_id = flow.add_routine(source2, "s2")
    p1_id = flow.add_routine(processor1, "p1")
    p2_id = flow.add_routine(processor2, "p2")
    flow.connect(s1_id, "output", p1_id, "input")
    flow.connect(s2_id, "output", p2_id, "input")

    job_state1 = flow.execute(s1_id)
    assert flow.wait_for_completion(timeout=5.0), "a job of the flow is still running"
    job_state2 = flow.execute(s2_id)
    assert flow.wait_for_completion(timeout=5.0), "a job of the flow is still running"

    js1_routines = {r.routine_id for r in job_state1.execution_history}
    js2_routines = {r.routine_id for r in job_state2.execution_history}
    print(f"JobState 1 routines: {js1_routines}")
    print(f"JobState 2 routines: {js2_routines}")
    assert js1_routines & js2_routines == set() or "s1" in js1_routines
    assert "s2" in js2_routines
    assert js1_routines == {"s1", "p1"}
    assert js2_routines == {"s2", "p2"}


def test_thread_safety_snippet_defines_a_class() -> None:
    """The guide's illustrative JobState class body runs (it only defines methods)."""
    from routilux import ExecutionRecord

    namespace: dict[str, Any] = {
        "ExecutionRecord": ExecutionRecord,
        "datetime": datetime,
        "Dict": dict,
        "Any": Any,
    }
    exec(
        "class JobState:\n"
        "    def record_execution(self, routine_id: str, event_name: str, data: Dict[str, Any]) -> None:\n"
        "        record = ExecutionRecord(routine_id, event_name, data)\n"
        "        self.execution_history.append(record)\n"
        "        self.updated_at = datetime.now()\n",
        namespace,
    )
    assert "record_execution" in vars(namespace["JobState"])


def test_best_practices(guide: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Store, monitor, manage several executions independently."""
    flow, source_id = guide
    saved: list[dict[str, Any]] = []
    save_to_database = saved.append

    job_state = flow.execute(source_id)
    job_state_data = job_state.serialize()
    save_to_database(job_state_data)
    assert saved[0]["job_id"] == job_state.job_id

    job_state = flow.execute(source_id)
    while job_state.status == "running":
        time.sleep(0.1)
    if job_state.status == "completed":
        print("Execution successful!")
    elif job_state.status == "failed":
        print("Execution failed!")
    assert capsys.readouterr().out == "Execution successful!\n"

    executions = []
    for i in range(10):
        job_state = flow.execute(source_id, entry_params={"batch": i})
        executions.append(job_state)
    for job_state in executions:
        if job_state.status == "paused":
            flow.resume(job_state)
    assert {js.status for js in executions} == {"completed"}

    entry_id = source_id
    executions_by_id = {}
    for i in range(10):
        job_state = flow.execute(entry_id, entry_params={"task_id": i})
        executions_by_id[i] = job_state
    for job_state in executions_by_id.values():
        assert flow.wait_for_completion(timeout=5.0), "a job of the flow is still running"
    for task_id, job_state in executions_by_id.items():
        print(f"Task {task_id}: {job_state.status}")
    assert capsys.readouterr().out.splitlines() == [f"Task {i}: completed" for i in range(10)]


def test_pitfalls(guide: Any) -> None:
    """A Flow has no job_state; each execute returns a new JobState; flow data has no job."""
    flow, source_id = guide
    with pytest.raises(AttributeError):
        flow.job_state.status
    job_state1 = flow.execute(source_id)
    job_state2 = flow.execute(source_id)
    assert job_state1 is not job_state2
    flow_data = flow.serialize()
    job_state_data = job_state1.serialize()
    assert "job_state" not in flow_data and job_state_data["job_id"] == job_state1.job_id


def test_cross_host_execution(guide: Any) -> None:
    """Host A serializes a paused job and its flow; host B rebuilds both and resumes."""
    flow, source_id = guide
    # Host A: Execute and serialize
    job_state = flow.execute(source_id)
    flow.pause(job_state, reason="Transfer to Host B")

    flow_data = flow.serialize()
    job_state_data = job_state.serialize()

    sent = json.loads(json.dumps({"flow": flow_data, "job": job_state_data}))
    flow_data, job_state_data = sent["flow"], sent["job"]

    # Host B: Deserialize and resume
    new_flow = Flow()
    new_flow.deserialize(flow_data)

    new_job_state = JobState()
    new_job_state.deserialize(job_state_data)

    resumed = new_flow.resume(new_job_state)
    assert resumed.wait_for_completion(timeout=5)
    assert resumed.status == "completed"
    assert new_flow.flow_id == "my_flow" and list(new_flow.routines) == ["source"]
    assert type(new_flow.routines["source"]) is Source
    new_flow.shutdown()
