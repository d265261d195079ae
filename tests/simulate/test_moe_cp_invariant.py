"""Context parallelism combined with expert parallelism (and MLA): overlap off + no contention, the
simulator replays the analytic estimate (the ring / all-gather exchange, the all-to-alls and the
grouped GEMMs are the same priced ops in both); contention on never makes the step faster."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware
from planner.scenario import Scenario
from planner.specs import Layout, ModelSpec, TrainingSpec, check_layout
from planner.work.context import RingAttention
from planner.work.ops import Collective
from simulate import simulate_estimate

MOE = ModelSpec(name="sim-moe-cp", num_layers=8, hidden_size=1024, num_heads=16, num_kv_heads=4,
                ffn_hidden_size=4096, ffn_kind="swiglu", norm_kind="rmsnorm", vocab_size=32000,
                tied_embeddings=False, position_kind="rope", linear_bias=False, num_experts=32, moe_top_k=4,
                expert_ffn_hidden_size=512, num_shared_experts=1, num_dense_layers=1, source="test model")
MLA = MOE.model_copy(update={"name": "sim-mla-cp", "attention_kind": "mla", "q_lora_rank": 384,
                             "kv_lora_rank": 256, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32,
                             "v_head_dim": 64, "num_kv_heads": 16})

LAYOUTS = [
    dict(tp=2, cp=2, dp=4, ep=8, sequence_parallel=True),
    dict(tp=2, cp=2, dp=4, ep=8, sequence_parallel=True, cp_kind="allgather"),
    dict(tp=1, cp=4, dp=8, ep=32),  # the cp ring and the all-to-alls both leave the node
    dict(tp=2, pp=2, cp=2, dp=4, ep=4, etp=1, sequence_parallel=True),
]


def _scenario(model, layout, overlap_dp=False):
    lay = Layout(**layout)
    trn = TrainingSpec(global_batch_size=8 * lay.dp, seq_length=8192, overlap_dp_comm=overlap_dp)
    sc = Scenario(model=model, hardware=load_hardware("h100-sxm-80gb"), gpus=lay.gpus, training=trn, layout=lay)
    check_layout(sc.layout, sc.model, sc.training, sc.gpus)
    return sc


@pytest.mark.parametrize("model", [MOE, MLA], ids=["gqa", "mla"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: "-".join(f"{k}{v}" for k, v in lay.items()))
def test_cp_with_experts_simulated_equals_analytic(model, layout):
    sc = _scenario(model, layout)
    analytic = sc.estimate()
    assert analytic.time.cp_comm > 0
    sim = simulate_estimate(sc, overlap=False, contention=False)
    assert sim.step_time_s == pytest.approx(analytic.step_time_s, rel=0.01)
    assert sim.time.cp_comm == pytest.approx(analytic.time.cp_comm, rel=0.01)
    assert sim.peak_memory_bytes == pytest.approx(analytic.peak_memory_bytes, rel=1e-9)
    loaded = simulate_estimate(sc, overlap=True, contention=True)
    assert loaded.step_time_s >= simulate_estimate(sc, overlap=True, contention=False).step_time_s * (1 - 1e-9)


def test_mla_exchanges_every_heads_k_and_v_over_cp():
    from planner.work.step import build_step

    ring = build_step(MLA, _scenario(MLA, LAYOUTS[0]).training, Layout(**LAYOUTS[0])).stages[0].layer.forward
    core = next(op for op in ring if isinstance(op, RingAttention))
    heads = MLA.num_heads // 2  # tp 2
    tokens = 8192 // 2  # s / cp
    d_qk, d_v = MLA.qk_nope_head_dim + MLA.qk_rope_head_dim, MLA.v_head_dim
    assert core.transfer_bytes == pytest.approx(tokens * heads * (d_qk + d_v) * 2)  # K + V, 16-bit
    gather = build_step(MLA, _scenario(MLA, LAYOUTS[1]).training, Layout(**LAYOUTS[1])).stages[0].layer.forward
    assert any(isinstance(op, Collective) and op.axis == "cp" and op.kind == "all-gather" for op in gather)
