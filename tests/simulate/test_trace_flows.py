"""Every pipeline send's flow arrow binds to a slice at both ends (Perfetto flow events): it starts on
the send's slice and lands on the slice of the op that consumes it (issue 25)."""

from __future__ import annotations

import pytest
from sim_scenarios import scenario

from simulate import run
from simulate.trace import trace_document, unbound_flows, validate_trace


@pytest.mark.parametrize("overlap,jitter,layout", [
    (True, 0.0, {"pp": 4, "dp": 2, "zero_stage": 1}),
    (False, 0.0, {"pp": 4, "dp": 2, "zero_stage": 1}),
    (True, 0.05, {"pp": 4, "dp": 1}),
    (True, 0.0, {"pp": 2, "vpp": 2, "dp": 1, "schedule": "interleaved-1f1b"}),
    (True, 0.0, {"pp": 4, "dp": 1, "schedule": "zb-h1"}),
])
def test_each_send_lands_on_the_op_that_uses_it(overlap, jitter, layout):
    res = run(scenario(gb=16, **layout), overlap=overlap, jitter=jitter, trace=True)
    events = trace_document(res.trace_events, layout["pp"], "t")["traceEvents"]
    assert validate_trace({"traceEvents": events}) == []
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    assert starts and starts.keys() == ends.keys()
    for fid, end in ends.items():  # the arrow ends on another stage's compute track, inside an op
        assert end["pid"] != starts[fid]["pid"] and end["tid"] == 0 and end["bp"] == "e"
        ops = [e for e in events if e["ph"] == "X" and e["pid"] == end["pid"] and e["tid"] == 0
               and e["ts"] <= end["ts"] <= e["ts"] + e["dur"]]
        assert ops and ops[0]["name"].split(" ")[0] in ("forward", "backward", "backward-input")


def test_a_flow_end_outside_any_slice_is_reported():
    events = [{"name": "x", "ph": "X", "pid": 0, "tid": 0, "ts": 0.0, "dur": 1.0},
              {"name": "p2p", "ph": "s", "id": 1, "pid": 0, "tid": 0, "ts": 0.5},
              {"name": "p2p", "ph": "f", "bp": "e", "id": 1, "pid": 1, "tid": 0, "ts": 2.0}]
    assert unbound_flows(events) == ["flow 1: f at 2.0 us binds to no slice of pid 1 tid 0"]
