"""Expert-parallel layouts: with overlap off and no contention the simulator replays the analytic
estimate within 1 % (the all-to-alls, etp gathers and grouped expert GEMMs are the same priced ops in
both), over random ep / etp / tp / pp / dp layouts, some with the ep group spanning nodes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hwprofiles import load_hardware
from planner.errors import SpecError
from planner.scenario import Scenario
from planner.specs import Layout, ModelSpec, TrainingSpec, check_layout
from simulate import simulate_estimate

MOE = ModelSpec(name="sim-moe", num_layers=8, hidden_size=1024, num_heads=16, num_kv_heads=4, ffn_hidden_size=4096,
                ffn_kind="swiglu", norm_kind="rmsnorm", vocab_size=32000, tied_embeddings=False, position_kind="rope",
                linear_bias=False, num_experts=32, moe_top_k=4, expert_ffn_hidden_size=512, num_shared_experts=1,
                num_dense_layers=1, source="test model")


@st.composite
def moe_layouts(draw):
    tp = draw(st.sampled_from([1, 2, 4]))
    pp = draw(st.sampled_from([1, 2, 4]))
    dp = draw(st.sampled_from([2, 4, 8, 16]))
    etp = draw(st.sampled_from([1, tp]))
    ep = draw(st.sampled_from([1, 2, 4, 8, 16, 32]))
    # zb-h1 is left out: its analytic bubble differs from the simulated one for dense models too (5 %)
    schedule = draw(st.sampled_from(["1f1b", "gpipe"] if pp > 1 else ["1f1b"]))
    zero = draw(st.sampled_from([0, 1, 2, 3] if pp == 1 else [0, 1]))  # 3: FSDP + EP (work.expert_states)
    return dict(tp=tp, pp=pp, dp=dp, ep=ep, etp=etp, schedule=schedule, zero_stage=zero,
                sequence_parallel=tp > 1)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moe_layouts(), st.sampled_from(["alltoall", "deepep", "hybridep"]), st.booleans(), st.sampled_from([0, 1]),
       st.sampled_from([None, 1.25]))
def test_simulated_step_equals_analytic_with_syncs_a2a_overlap_and_mtp(layout, dispatcher, a2a, mtp, capacity):
    """Host syncs (dropless), the combined-1F1B all-to-all overlap, MTP modules, padded dispatch and the flex
    dispatcher's measured throughput across nodes are the same priced parts in the analytic model and the replay
    (planner.cost.a2a_overlap, planner.pricing.collectives)."""
    lay = Layout(**layout)
    # with pp > 1 the MTP module and second head make the last stage the heaviest: the closed-form pipeline
    # differs from the replay by ~1-2 % there for dense models too (tests/simulate/test_invariant.py), so no MTP
    training = TrainingSpec(global_batch_size=16 * lay.dp, seq_length=1024, overlap_dp_comm=False,
                            moe_token_dispatcher=dispatcher, moe_a2a_overlap=a2a, mtp_layers=mtp if lay.pp == 1 else 0,
                            moe_capacity_factor=capacity)
    _replay_equals_analytic(lay, training)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moe_layouts(), st.sampled_from([1, 2]), st.sampled_from(["none", "selective", "full"]),
       st.sampled_from([1.0, 1.3]))
def test_simulated_moe_step_equals_analytic(layout, mb, recompute, imbalance):
    lay = Layout(**layout)
    training = TrainingSpec(global_batch_size=32 * mb * lay.dp // 2, micro_batch_size=mb, seq_length=1024,
                            recompute=recompute, overlap_dp_comm=False, moe_load_imbalance=imbalance)
    _replay_equals_analytic(lay, training)


def _replay_equals_analytic(lay: Layout, training: TrainingSpec) -> None:
    """With overlap and contention off the replay equals the analytic estimate (layouts the spec refuses are
    skipped); 1.5 %: tp4 pp4 dp8 with the dense first layer differs by 1.04 % on main already (closed-form
    1F1B against the replay), before any of issue 23's mechanisms."""
    sc = Scenario(model=MOE, hardware=load_hardware("h100-sxm-80gb"), gpus=lay.gpus, training=training, layout=lay)
    try:
        check_layout(sc.layout, sc.model, sc.training, sc.gpus)
    except SpecError:
        assume(False)
    analytic = sc.estimate()
    sim = simulate_estimate(sc, overlap=False, contention=False)
    assert sim.step_time_s == pytest.approx(analytic.step_time_s, rel=0.015)
    assert sim.peak_memory_bytes == pytest.approx(analytic.peak_memory_bytes, rel=1e-9)


def test_ep_layout_spanning_nodes_is_simulated():
    lay = Layout(tp=1, pp=1, dp=32, ep=32, etp=1)
    sc = Scenario(model=MOE, hardware=load_hardware("h100-sxm-80gb"), gpus=32,
                  training=TrainingSpec(global_batch_size=64, seq_length=1024, overlap_dp_comm=False), layout=lay)
    analytic = sc.estimate()
    sim = simulate_estimate(sc, overlap=False, contention=False)
    assert analytic.time.tp_comm > 0  # the all-to-alls cross 4 nodes
    assert sim.step_time_s == pytest.approx(analytic.step_time_s, rel=0.01)


def test_all_to_all_contends_with_gradient_reduction_on_the_nics():
    """Contention on: the off-node all-to-alls are flows on the NIC fabric, and the overlapped data-parallel
    reduction shares those NICs with them, so the step gets slower than with contention off."""
    lay = Layout(tp=1, pp=1, dp=32, ep=32, etp=1)
    sc = Scenario(model=MOE, hardware=load_hardware("h100-sxm-80gb"), gpus=32,
                  training=TrainingSpec(global_batch_size=64, seq_length=1024, overlap_dp_comm=True), layout=lay)
    free = simulate_estimate(sc, overlap=True, contention=False).step_time_s
    shared = simulate_estimate(sc, overlap=True, contention=True).step_time_s
    assert shared > free * 1.002
    intra = Layout(tp=1, pp=1, dp=32, ep=8, etp=1)  # all-to-alls inside a node: nothing on the NICs
    sc8 = sc.model_copy(update={"layout": intra})
    assert simulate_estimate(sc8, overlap=True, contention=True).step_time_s == pytest.approx(
        simulate_estimate(sc8, overlap=True, contention=False).step_time_s, rel=1e-9)
