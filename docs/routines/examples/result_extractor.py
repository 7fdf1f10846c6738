"""ResultExtractor: the JSON of a fenced block in a model's answer."""

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import ResultExtractor


FENCE = "`" * 3  # a fenced json block inside the text
ANSWER = f'The result:\n{FENCE}json\n{{"answer": 42}}\n{FENCE}\nHope this helps.'


def build_flow():
    flow = Flow("extract")
    flow.add_routine(ResultExtractor(), "extract")
    return flow


def main():
    flow = build_flow()
    job = flow.execute("extract", {"data": ANSWER}, entry_slot="input")
    (record,) = [r for r in job.execution_history if isinstance(r, EmitRecord)]
    print(record.data["extracted_result"], record.data["format"], record.data["confidence"])
    flow.shutdown()


if __name__ == "__main__":
    main()
