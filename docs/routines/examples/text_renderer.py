"""TextRenderer then TextClipper: a dict as tagged text, clipped for a prompt."""

from routilux import Flow
from routilux.history import EmitRecord
from routilux_stdlib import TextClipper, TextRenderer


def build_flow():
    render = TextRenderer()
    render.set_config(include_type_hints=True)
    clip = TextClipper()
    clip.set_config(max_length=200)
    flow = Flow("render")
    flow.add_routine(render, "render")
    flow.add_routine(clip, "clip")
    flow.connect("render", "output", "clip", "input", {"rendered_text": "text"})
    return flow


def main():
    flow = build_flow()
    job = flow.execute("render", {"data": {"name": "ada", "age": 36}}, entry_slot="input")
    for record in job.execution_history:
        if isinstance(record, EmitRecord) and record.routine_id == "render":
            print(record.data["rendered_text"])
    flow.shutdown()


if __name__ == "__main__":
    main()
