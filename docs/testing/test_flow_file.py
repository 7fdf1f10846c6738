"""Testing a flow file of built-in routines, and a job run through a store."""

import json

from routilux.store import create_job, run_job
from routilux.testing import assert_emitted, run_flow


FLOW = {
    "format": "routilux.flow",
    "version": 1,
    "flow_id": "clipping",
    "routines": {"clip": {"type": "TextClipper", "config": {"max_length": 12}}},
    "connections": [],
}


def test_long_text_is_clipped(routilux_flow, tmp_path):
    path = tmp_path / "clipping.json"
    path.write_text(json.dumps(FLOW))
    flow = routilux_flow(document=path)  # loaded as `routilux run` loads it
    job = run_flow(flow, "clip", {"text": "a line\nand a much longer second line"})
    assert_emitted(job, "clip.output", clipped_text="a line\n...(省略了1行)", was_clipped=True)


def test_a_stored_job(routilux_flow, routilux_store):
    flow = routilux_flow(document=FLOW)
    job_id = create_job(routilux_store, flow, "clip", {"text": "hi"})
    job = run_job(job_id, routilux_store)  # as `routilux run` runs it
    assert job.status == routilux_store.load_job(job_id).status == "completed"
    assert_emitted(job, "clip.output", clipped_text="hi", was_clipped=False)
