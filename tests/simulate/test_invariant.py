"""Overlap off + no contention: the simulator replays the analytic model exactly (within 1 %)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sim_scenarios import SMALL, TINY_VOCAB, scenario

from planner.cost.schedule import bubble_fraction_closed_form
from planner.errors import SpecError
from planner.specs import check_layout
from simulate import simulate_estimate


@st.composite
def layouts(draw):
    pp = draw(st.sampled_from([1, 2, 4, 8]))
    schedule = draw(st.sampled_from(["1f1b", "gpipe", "interleaved-1f1b"] if pp > 1 else ["1f1b"]))
    vpp = draw(st.sampled_from([2, 4])) if schedule == "interleaved-1f1b" else 1
    zero = draw(st.sampled_from([0, 1, 2, 3] if pp == 1 else [0, 1, 2]))
    return dict(tp=draw(st.sampled_from([1, 2, 4])), pp=pp, dp=draw(st.sampled_from([1, 2, 4])), vpp=vpp,
                schedule=schedule, zero_stage=zero), draw(st.sampled_from(["none", "selective", "full"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts(), st.sampled_from([1, 2]), st.booleans())
def test_simulated_step_equals_analytic(layout_recompute, mb, overlap_dp):
    layout, recompute = layout_recompute
    interleaved = layout["schedule"] == "interleaved-1f1b"
    # with interleaving the last micro-batch's backward is spread over the drain, which hides more
    # of the reduction than the analytic rule (bwd + slack) credits (~1 %, reported): overlap off there
    overlap_dp = overlap_dp and not interleaved
    # the closed form divides fill/drain by v assuming equal chunks; a large head on the last chunk
    # breaks that by ~2 % (reported), so interleaving is checked with a small vocabulary
    sc = scenario(model=TINY_VOCAB if interleaved else SMALL, gb=64 * mb, mb=mb, recompute=recompute,
                  overlap_dp=overlap_dp, **layout)
    try:
        check_layout(sc.layout, sc.model, sc.training, sc.gpus)
    except SpecError:
        assume(False)
    m = sc.training.global_batch_size // (mb * sc.layout.dp)
    assume(sc.layout.schedule != "interleaved-1f1b" or m % sc.layout.pp == 0)
    analytic = sc.estimate()
    sim = simulate_estimate(sc, overlap=False, contention=False)
    assert sim.step_time_s == pytest.approx(analytic.step_time_s, rel=0.01)
    if not interleaved:  # interleaved: analytic in-flight of stages > 0 is low (reported); stage 0 agrees
        assert sim.peak_memory_bytes == pytest.approx(analytic.peak_memory_bytes, rel=1e-9)


@pytest.mark.parametrize("pp,vpp,schedule", [(4, 1, "1f1b"), (8, 1, "1f1b"), (4, 2, "interleaved-1f1b"),
                                             (8, 2, "interleaved-1f1b"), (4, 4, "interleaved-1f1b")])
def test_bubble_matches_closed_form(pp, vpp, schedule):
    sc = scenario(model=TINY_VOCAB, gb=32, tp=1, pp=pp, dp=1, vpp=vpp, schedule=schedule)
    sim = simulate_estimate(sc, overlap=False, contention=False)
    ideal = sim.time.compute + sim.time.tp_comm + sim.time.pp_comm
    closed = bubble_fraction_closed_form(pp, sim.micro_batches, schedule, vpp)
    assert sim.time.pp_bubble == pytest.approx(sc.estimate().time.pp_bubble, rel=0.015)
    # stages are equal up to the embedding / head (a few % of a 4-layer stage)
    assert sim.time.pp_bubble / ideal == pytest.approx(closed, rel=0.05)


def test_zb_h1_smaller_bubble_same_memory():
    one = simulate_estimate(scenario(gb=32, pp=8, schedule="1f1b"), overlap=False, contention=False)
    zb = simulate_estimate(scenario(gb=32, pp=8, schedule="zb-h1"), overlap=False, contention=False)
    assert zb.time.pp_bubble < 0.75 * one.time.pp_bubble
    assert zb.step_time_s < one.step_time_s
    assert [s.peak_bytes for s in zb.memory] == pytest.approx([s.peak_bytes for s in one.memory])
