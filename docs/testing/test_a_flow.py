"""Testing a flow: routines wired together, concurrent, and the events of its jobs."""

from routilux import Routine
from routilux.testing import assert_emitted, run_flow


class Split(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", self.split)
        self.define_event("word", ["word"])

    def split(self, sentence, **_):
        for word in sentence.split():
            self.emit("word", word=word)


class Shout(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("word", self.shout)
        self.define_event("shouted", ["word"])

    def shout(self, word, **_):
        self.emit("shouted", word=word.upper())


def build(routilux_flow):
    flow = routilux_flow("shouting", execution_strategy="concurrent", max_workers=3)
    flow.add_routine(Split(), "split")
    flow.add_routine(Shout(), "shout")
    flow.connect("split", "word", "shout", "word")
    return flow


def test_every_word_is_shouted(routilux_flow):
    job = run_flow(build(routilux_flow), "split", {"sentence": "one two three"})
    for word in ("ONE", "TWO", "THREE"):
        assert_emitted(job, "shout.shouted", word=word)


def test_the_jobs_events(routilux_flow, routilux_events):
    job = build(routilux_flow).submit("split", {"sentence": "one two"})  # in the background
    finished = routilux_events.wait_for("job_finished", job_id=job.job_id)  # at most 10 s
    assert finished.data == {"status": "completed"}
    assert job.wait_for_completion(10)
    assert routilux_events.kinds(job.job_id)[0] == "job_started"
    shouted = routilux_events.filter("emitted", routine_id="shout", job_id=job.job_id)
    assert sorted(e.data["data"]["word"] for e in shouted) == ["ONE", "TWO"]
    assert routilux_events.filter("error") == []
