"""Golden: context parallelism of Llama 3 8B at 131,072 tokens on 64 H100 with tp 8, cp 8.

- Ring attention with 2*cp load-balanced chunks (Liu et al. 2023, arXiv 2310.01889; Megatron-Core
  context-parallel guide): each rank executes the causal work of the whole sequence divided by cp,
  in cp blocks of (s/cp)^2, and sends (cp-1) K/V chunks forward and (cp-1) K/V + dK/dV chunks plus the
  last dK/dV hop backward, per layer.
- All-gather attention (Llama 3, arXiv 2407.21783 Sec. 3.3.2): K/V of the whole sequence gathered.
- Gradients reduced over the dp x cp ranks; cp = 1 at the same micro-batch does not fit; the
  search picks cp at this length.
"""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware, load_model
from planner.cost import estimate
from planner.pricing import Pricer
from planner.search import search
from planner.specs import Layout, TrainingSpec
from planner.work.context import RingAttention
from planner.work.ops import Attention, Collective
from planner.work.step import build_step

S, CP, TP, GPUS = 131072, 8, 8, 64
B = 1


@pytest.fixture(scope="module")
def setup():
    model = load_model("llama3-8b")
    return model, load_hardware("h100-sxm-80gb"), TrainingSpec(seq_length=S, global_batch_size=64)


def _layout(**kw):
    base = dict(tp=TP, cp=CP, dp=GPUS // (TP * CP), sequence_parallel=True)
    base.update(kw)
    return Layout(**base)


def _heads(model):
    return model.num_heads // TP, max(1, model.kv_heads // TP), model.head_size


def test_ring_attention_work_per_rank_is_causal_work_over_cp(setup):
    model, _, trn = setup
    step = build_step(model, trn, _layout())
    ring = [op for op in step.stages[0].layer.forward if isinstance(op, RingAttention)]
    assert len(ring) == 1
    (op,) = ring
    a, _, d = _heads(model)
    causal_full = 0.5 * 4 * B * a * S * S * d  # executed FLOPs of causal attention over the whole sequence
    assert op.steps == CP
    assert (op.block.seq_q, op.block.seq_k) == (S // CP, S // CP)
    assert op.executed_flops == pytest.approx(causal_full / CP, rel=1e-12)
    assert op.flops == pytest.approx(4 * B * a * S * S * d / CP, rel=1e-12)  # model FLOPs: full s^2 / cp
    # the old (s/cp)^2 description did cp times too little work
    assert op.executed_flops == pytest.approx(CP * Attention("x", B * a, S // CP, S // CP, d, "fwd").executed_flops)


def test_ring_kv_traffic_per_layer(setup):
    model, _, trn = setup
    step = build_step(model, trn, _layout())
    _, g, d = _heads(model)
    kv = B * (S // CP) * 2 * g * d * 2  # K and V of the local s/cp tokens, bf16
    assert kv == 8 * 2**20
    fwd = next(op for op in step.stages[0].layer.forward if isinstance(op, RingAttention))
    bwd = next(op for op in step.stages[0].layer.backward_input if isinstance(op, RingAttention))
    assert fwd.sent_bytes == (CP - 1) * kv == 58_720_256
    assert bwd.sent_bytes == (2 * CP - 1) * kv == 125_829_120  # K/V + dK/dV per step, the last dK/dV hop home
    assert bwd.executed_flops == pytest.approx(2.5 * fwd.executed_flops)


def test_allgather_variant_gathers_the_whole_sequence(setup):
    model, _, trn = setup
    step = build_step(model, trn, _layout(cp_kind="allgather"))
    a, g, d = _heads(model)
    fwd = step.stages[0].layer.forward
    gather = next(op for op in fwd if isinstance(op, Collective) and op.axis == "cp")
    assert (gather.kind, gather.bytes) == ("all-gather", B * S * 2 * g * d * 2)
    attn = next(op for op in fwd if isinstance(op, Attention))
    assert (attn.seq_q, attn.seq_k) == (S // CP, S)
    assert attn.executed_flops == pytest.approx(0.5 * 4 * B * a * S * S * d / CP, rel=1e-12)
    back = next(op for op in step.stages[0].layer.backward_input if isinstance(op, Collective) and op.axis == "cp")
    assert (back.kind, back.bytes) == ("reduce-scatter", gather.bytes)


def test_model_flops_per_step_do_not_depend_on_cp(setup):
    model, _, trn = setup
    ref = build_step(model, trn, Layout(tp=TP, dp=GPUS // TP, sequence_parallel=True)).model_flops_per_step
    for kind in ("ring", "allgather"):
        got = build_step(model, trn, _layout(cp_kind=kind)).model_flops_per_step
        assert got == pytest.approx(ref, rel=1e-12)


def test_gradients_reduce_and_shard_over_dp_times_cp(setup):
    model, hw, trn = setup
    lay = _layout(zero_stage=1)
    step = build_step(model, trn, lay)
    stage = step.stages[0]
    assert {c.axis for c in stage.per_step_comm} == {"dp"}
    pricer = Pricer(hw, trn, lay, GPUS)
    assert pricer.groups["dp"].size == (GPUS // (TP * CP)) * CP == 8
    assert pricer.groups["cp"].size == CP and pricer.groups["cp"].nodes == CP  # stride tp: one rank per node
    no_cp = build_step(model, trn, Layout(tp=TP, dp=1, sequence_parallel=True, zero_stage=1))
    assert stage.optimizer_bytes == pytest.approx(no_cp.stages[0].optimizer_bytes / CP)


def test_step_is_priced_with_exposed_ring_time(setup):
    model, hw, trn = setup
    est = estimate(model, hw, trn, _layout(), GPUS)
    assert est.fits
    assert est.time.cp_comm > 0
    assert est.time.total == pytest.approx(est.step_time_s, rel=1e-12)
    # figure of 2026-12-07 (re-pin with the reason when the pricing becomes more faithful): 46.33 until the
    # sustained clock (H100 compute at 1830 MHz against the microbenchmarks' 1980), 55.21 before the attention
    # table by head dim and sequence (h1)
    assert est.step_time_s == pytest.approx(49.72, rel=0.03)


def test_cp1_at_the_same_micro_batch_does_not_fit(setup):
    model, hw, trn = setup
    for recompute in ("none", "selective"):
        t = trn.replace(recompute=recompute)
        assert estimate(model, hw, t, _layout(), GPUS).fits
        assert not estimate(model, hw, t, Layout(tp=TP, dp=GPUS // TP, sequence_parallel=True), GPUS).fits


def test_plan_finds_a_context_parallel_layout(setup):
    model, hw, trn = setup
    result = search(model, hw, GPUS, trn, top=5)
    assert result.best.layout.cp > 1
    assert result.best.estimate.fits
    assert S % (2 * result.best.layout.cp) == 0
