"""
An LLM-style pipeline: an async model call retried when it is rate limited, the answer's JSON
extracted, and a person who approves the result before it is published.
"""

import asyncio

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine
from routilux_stdlib import HumanInput, ResultExtractor


class FakeModel:
    """Stands in for an async model client: the first call is rate limited."""

    def __init__(self):
        self.calls = 0

    async def complete(self, prompt):
        self.calls += 1
        await asyncio.sleep(0.01)  # the network round trip
        if self.calls == 1:
            raise ConnectionError("429 Too Many Requests")
        title = prompt.removeprefix("Summarize: ")
        fence = "`" * 3
        return f'Here it is:\n{fence}json\n{{"title": "{title}", "words": 42}}\n{fence}'


model = FakeModel()


class Draft(Routine):
    """Asks the model for a summary of ``topic`` (an async handler: no thread waits)."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", self.draft)
        self.define_event("answer", ["data"])

    async def draft(self, topic, **_):
        self.emit("answer", data=await model.complete(f"Summarize: {topic}"))


class Publish(Routine):
    """Publishes the summary a person approved, and drops the others."""

    def __init__(self):
        super().__init__()
        self.define_slot("input", self.publish)

    def publish(self, answer, data, **_):
        if answer == "yes":
            self.send_output("published", title=data["title"])
        else:
            self.send_output("dropped", title=data["title"])


def build_flow():
    flow = Flow("summaries")  # sequential: each step waits for the one before it
    draft = Draft()
    # Rate limits and dropped connections are worth another try; anything else is not.
    draft.set_error_handler(
        ErrorHandler(
            strategy=ErrorStrategy.RETRY,
            max_retries=3,
            retry_delay=0.05,
            retry_backoff=2.0,
            retryable_exceptions=(ConnectionError,),
        )
    )
    review = HumanInput()
    review.set_config(question="Publish the summary {title!r} ({words} words)? yes/no")
    flow.add_routine(draft, "draft")
    flow.add_routine(ResultExtractor(), "extract")
    flow.add_routine(review, "review")
    flow.add_routine(Publish(), "publish")
    flow.connect("draft", "answer", "extract", "input")
    flow.connect("extract", "output", "review", "input", {"extracted_result": "data"})
    flow.connect("review", "output", "publish", "input")
    return flow


def main():
    flow = build_flow()
    job = flow.execute("draft", {"topic": "routines and slots"})
    print("status:", job.status)
    print("asks:", HumanInput.waiting(job)["review"]["question"])
    print("model calls:", model.calls, [e.error_type for e in job.errors], "(retried)")

    # The person says yes (from Python here; see the recipe on answering a paused job).
    HumanInput.provide_answer(job, "review", answer="yes")
    flow.resume(job)
    job.wait_for_completion(timeout=30)
    print("status:", job.status)
    sent = [(o["output_type"], o["data"]) for o in job.output_log]
    print("outputs:", [item for item in sent if item[0] != "human_input"])
    flow.shutdown()


if __name__ == "__main__":
    main()
