"""TextClipper: long text cut to a length, with a note of what was left out."""

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import TextClipper


def build_flow():
    clip = TextClipper()
    clip.set_config(max_length=12, truncation_message="[{remaining} more]")
    flow = Flow("clip")
    flow.add_routine(clip, "clip")
    return flow


def main():
    flow = build_flow()
    job = flow.execute("clip", {"text": "one\ntwo\nthree\nfour"}, entry_slot="input")
    (record,) = [r for r in job.execution_history if isinstance(r, EmitRecord)]
    print(record.data["clipped_text"])
    print(record.data["was_clipped"], record.data["original_length"])
    flow.shutdown()


if __name__ == "__main__":
    main()
