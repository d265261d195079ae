"""TP communication overlap styles (planner.pricing.tp_overlap) and their place in the search."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from hwprofiles import load_hardware, load_model
from planner.cost import estimate
from planner.pricing import Pricer
from planner.pricing.tp_overlap import UB_MAX_STREAMS, chunk_gemm_time, ring_exchange_time, sm_margin_slowdown
from planner.search import SearchConstraints, search
from planner.specs import Layout, TrainingSpec
from planner.work.ops import Collective, Gemm


@pytest.fixture(scope="module")
def pricer():
    hw = load_hardware("h100-sxm-80gb")
    return Pricer(hw, TrainingSpec(global_batch_size=8), Layout(tp=8, sequence_parallel=True), 8)


def test_ring_exchange_exposes_one_chunk_plus_the_excess(pricer):
    ag = Collective("qkv.allgather", "all-gather", "tp", 64e6, "fwd")
    gemm = Gemm("qkv", 8192, 1280, 8192, "fwd")
    compute, comm = ring_exchange_time((ag, gemm), pricer)
    c = pricer.op_time(ag)
    # TE runs the 8 chunks round-robin on 3 compute streams: 3 concurrent chunks cost one GEMM on 3/8 of the rows
    chunk = pricer.op_time(replace(gemm, m=math.ceil(8192 * 3 / 8))) / 3
    assert comm == pytest.approx(c / 8 + 7 * max(0.0, c / 8 - chunk))
    assert compute == pytest.approx(8 * chunk) and compute >= pricer.op_time(gemm)


def test_concurrent_chunk_streams_recover_the_chunking_loss(pricer):
    """TE _NUM_MAX_UB_STREAMS = 3: at tp <= 3 the chunks cost the whole GEMM; at tp 8 they cost more than
    the whole GEMM but less than 8 chunks run one after another."""
    assert UB_MAX_STREAMS == 3
    gemm = Gemm("qkv", 4096, 2688, 7168, "fwd")
    whole = pricer.op_time(gemm)
    for tp in (2, 3):
        assert tp * chunk_gemm_time(gemm, tp, pricer) == pytest.approx(whole, rel=1e-3)
    serial = 8 * pricer.op_time(replace(gemm, m=4096 // 8))
    assert whole < 8 * chunk_gemm_time(gemm, 8, pricer) < serial


def test_megatron_core_recipe_defaults_to_the_per_gemm_style():
    """The style is a recipe field: megatron-core (TE userbuffers) ring-exchange, the others the whole-pass bound."""
    assert TrainingSpec(global_batch_size=8, recipe="megatron-core").tp_overlap_style == "ring-exchange"
    assert TrainingSpec(global_batch_size=8, recipe="megatron-lm").tp_overlap_style == "pass"
    explicit = TrainingSpec(global_batch_size=8, recipe="megatron-core", tp_overlap_style="pass")
    assert explicit.tp_overlap_style == "pass"


def test_all_reduce_is_not_decomposed(pricer):
    ar = Collective("proj.allreduce", "all-reduce", "tp", 64e6, "fwd")
    gemm = Gemm("proj", 8192, 8192, 1024, "fwd")
    _, comm = ring_exchange_time((gemm, ar), pricer)
    assert comm == pytest.approx(pricer.op_time(ar))


def test_styles_order_on_a_tp8_megatron_layout():
    hw, model = load_hardware("h100-sxm-80gb"), load_model("llama3-70b")
    lay = Layout(tp=8, pp=4, dp=2, sequence_parallel=True)

    def step(**kw):
        trn = TrainingSpec(global_batch_size=128, seq_length=8192, recompute="selective", **kw)
        return estimate(model, hw, trn, lay, 64)

    off, ring = step(), step(tp_comm_overlap=True, tp_overlap_style="ring-exchange")
    ideal = step(tp_comm_overlap=True, tp_overlap_style="pass")
    assert ideal.step_time_s < ring.step_time_s < off.step_time_s
    assert ring.time.tp_comm < off.time.tp_comm and ring.time.compute > off.time.compute


def test_plan_prices_the_overlap_for_leading_megatron_plans():
    hw, model = load_hardware("h100-sxm-80gb"), load_model("llama3-8b")
    trn = TrainingSpec(global_batch_size=64, seq_length=4096)
    result = search(model, hw, 16, trn, SearchConstraints(max_tp=8), top=40)
    assert any(p.training.tp_comm_overlap for p in result.plans)
    off = search(model, hw, 16, trn, SearchConstraints(max_tp=8, search_tp_overlap=False), top=40)
    assert not any(p.training.tp_comm_overlap for p in off.plans)


def test_reduce_scatter_gemm_runs_on_the_sms_te_leaves_it(pricer):
    """TE's pipeline / bulk reduce-scatters take 16 SMs (set_sm_margin): the GEMM they drain runs on
    sm_count - 16 of H100's 132 SMs; the ring-exchange all-gather's GEMM keeps all SMs."""
    assert sm_margin_slowdown(pricer) == pytest.approx(132 / 116)
    gemm = Gemm("fc2", 8192, 8192, 1024, "fwd")
    rs = Collective("mlp.reduce-scatter", "reduce-scatter", "tp", 1e3, "fwd")
    ag = Collective("mlp.allgather", "all-gather", "tp", 1e3, "fwd")
    rs_compute, _ = ring_exchange_time((gemm, rs), pricer)
    ag_compute, _ = ring_exchange_time((ag, gemm), pricer)
    assert rs_compute == pytest.approx(8 * chunk_gemm_time(gemm, 8, pricer) * 132 / 116)
    assert ag_compute == pytest.approx(8 * chunk_gemm_time(gemm, 8, pricer))


def test_no_margin_without_an_sm_count():
    hw = load_hardware("mi250x-frontier")
    assert hw.device.sm_count is None
    p = Pricer(hw, TrainingSpec(global_batch_size=8), Layout(tp=8, sequence_parallel=True), 8)
    assert sm_margin_slowdown(p) == 1.0
