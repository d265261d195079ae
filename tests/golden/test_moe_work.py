"""Golden and unit checks of the MoE work (planner.work.moe), the MLA op set, expert placement
and the all-to-all price.

- Model FLOPs of a MoE step equal Megatron-Core's ``num_floating_point_operations`` with
  ``experts_per_token = k`` (megatron/training/training.py, r0.8.0) plus the router GEMMs, which
  that formula leaves out: 3 passes x 2*T*E*h per MoE layer.
- Dispatch and combine all-to-alls move T_in*k*h*2 bytes per rank per call (GShard, arXiv
  2006.16668, Sec. 2.2; Megatron-Core alltoall dispatcher), four per layer and micro-batch.
"""

import pytest

from hwprofiles.loader import load_hardware
from planner.errors import SpecError
from planner.pricing import Pricer
from planner.pricing.placement import expert_group_ranks
from planner.specs import Layout, ModelSpec, TrainingSpec, check_layout
from planner.work.conventions import megatron_core_model_flops
from planner.work.memory import layer_activation_bytes
from planner.work.ops import Collective, ExecutedGemm
from planner.work.step import build_step

MOE = ModelSpec(name="moe", num_layers=4, hidden_size=1024, num_heads=16, num_kv_heads=4, ffn_hidden_size=2048,
                ffn_kind="swiglu", norm_kind="rmsnorm", vocab_size=32000, tied_embeddings=False,
                position_kind="rope", linear_bias=False, num_experts=16, moe_top_k=2,
                expert_ffn_hidden_size=512)
TRAIN = TrainingSpec(seq_length=1024, global_batch_size=64, micro_batch_size=2)
T, H, K, E, F = 2 * 1024, 1024, 2, 16, 512


def _ops(layout, training=TRAIN, model=MOE):
    return build_step(model, training, layout).stages[0].layer


def test_model_flops_match_megatron_core_plus_router():
    step = build_step(MOE, TRAIN, Layout(dp=8, ep=8, etp=1))
    tokens = TRAIN.global_batch_size * TRAIN.seq_length
    mc = megatron_core_model_flops(TRAIN.global_batch_size, 1024, 4, H, 16, 4, 64, F, 32000, swiglu=True,
                                   experts_per_token=K)
    router = 3 * 2 * tokens * E * H * 4
    assert step.model_flops_per_step == pytest.approx(mc + router, rel=1e-12)


@pytest.mark.parametrize("layout", [Layout(dp=8), Layout(dp=8, ep=8, etp=1), Layout(dp=4, ep=2, etp=1, tp=2,
                                                                                      sequence_parallel=True),
                                    Layout(tp=2, dp=4, ep=4, sequence_parallel=True), Layout(pp=2, dp=4, ep=4)])
def test_flops_conserved_across_expert_layouts(layout):
    base = build_step(MOE, TRAIN, Layout(dp=8)).model_flops_per_step
    assert build_step(MOE, TRAIN, layout).model_flops_per_step == pytest.approx(base, rel=1e-12)


def test_all_to_all_bytes_and_count():
    layer = _ops(Layout(dp=8, ep=8, etp=1))
    a2a = [op for op in layer.forward + layer.backward_input if isinstance(op, Collective) and op.kind == "all-to-all"]
    assert [op.name for op in a2a] == ["moe.dispatch", "moe.combine", "moe.combine.bwd", "moe.dispatch.bwd"]
    assert all(op.bytes == T * K * H * 2 and op.axis == "ep" for op in a2a)


def test_no_expert_communication_without_ep_or_etp():
    layer = _ops(Layout(dp=8, ep=1, etp=1))
    assert not [op for op in layer.forward if isinstance(op, Collective)]


def test_grouped_gemm_rows_per_expert_and_imbalance():
    layer = _ops(Layout(dp=8, ep=4, etp=1))
    fc1 = next(op for op in layer.forward if op.name == "experts.fc1")
    assert isinstance(fc1, ExecutedGemm)
    assert (fc1.gemm.m, fc1.gemm.n, fc1.gemm.k, fc1.gemm.count) == (T * K * 4 // E, 2 * F, H, E // 4)
    skewed = _ops(Layout(dp=8, ep=4, etp=1), TRAIN.replace(moe_load_imbalance=1.5))
    fc1s = next(op for op in skewed.forward if op.name == "experts.fc1")
    assert fc1s.gemm.m == int(1.5 * T * K * 4 // E) and fc1s.flops == fc1.flops  # executed rows up, FLOPs not
    padded = _ops(Layout(dp=8, ep=4, etp=1), TRAIN.replace(moe_capacity_factor=1.25))
    assert next(op for op in padded.forward if op.name == "experts.fc1").gemm.m == 1.25 * T * K * 4 // E


def test_expert_tensor_parallel_gathers_and_splits_width():
    layer = _ops(Layout(tp=2, dp=4, ep=2, sequence_parallel=True))  # etp = tp = 2
    names = [op.name for op in layer.forward]
    assert names.index("moe.dispatch") < names.index("moe.dispatch.allgather") < names.index("experts.fc1")
    fc1 = next(op for op in layer.forward if op.name == "experts.fc1")
    # T_in = T/2 per rank, gathered over etp=2 -> T*K copies over E/ep = 8 experts, width F/2
    assert (fc1.gemm.m, fc1.gemm.n, fc1.gemm.count) == (T * K // 8, 2 * F // 2, 8)


def test_expert_memory_shrinks_with_ep():
    w = [build_step(MOE, TRAIN, Layout(dp=8, ep=ep, etp=1)).stages[0].weights_bytes for ep in (1, 2, 4, 8)]
    assert w == sorted(w, reverse=True) and w[0] > w[-1]


def test_moe_activations_scale_with_top_k():
    k1 = layer_activation_bytes(MOE.replace(moe_top_k=1), TRAIN, Layout(dp=8))
    k2 = layer_activation_bytes(MOE, TRAIN, Layout(dp=8))
    # routed copies: fc1 input, the two gated activation inputs and the fc2 input, per copy
    assert k2 - k1 == T * H * 2 + T * F * 2 * 3


def test_expert_grid_placement_megatron_order():
    lay = Layout(tp=2, pp=2, dp=4, ep=4, etp=1, sequence_parallel=True)
    assert expert_group_ranks(lay, "ep") == [0, 1, 2, 3]  # consecutive ranks of a stage (pp outermost)
    assert expert_group_ranks(lay, "edp") == [0, 4]
    assert expert_group_ranks(Layout(tp=2, dp=4, ep=2, sequence_parallel=True), "etp") == [0, 1]


def test_megatron_expert_rules():
    with pytest.raises(SpecError, match="num_experts"):
        check_layout(Layout(dp=6, ep=3, etp=1), MOE, TRAIN.replace(global_batch_size=12), 6)
    with pytest.raises(SpecError, match=r"ep\(16\) \* etp\(1\)"):
        check_layout(Layout(dp=8, ep=16, etp=1), MOE, TRAIN, 8)
    with pytest.raises(SpecError, match="sequence_parallel"):
        check_layout(Layout(tp=2, dp=4), MOE, TRAIN, 8)
    check_layout(Layout(tp=2, dp=4, ep=8, etp=1, sequence_parallel=True), MOE, TRAIN, 8)  # ep*etp | tp*dp


def test_all_to_all_price_intra_node():
    hw = load_hardware("h100-sxm-80gb")
    pricer = Pricer(hw, TRAIN, Layout(dp=8, ep=8, etp=1), 8)
    group = pricer.groups["ep"]
    assert (group.size, group.nodes) == (8, 1)
    c = pricer.collectives
    nbytes = 64e6
    expected = c.alpha_intra + 7 * nbytes / 8 / c.intra_bandwidth_bps(group.node_devices)
    assert c.time("all-to-all", nbytes, group) == pytest.approx(expected, rel=1e-12)


def test_all_to_all_off_node_uses_nic_share():
    hw = load_hardware("h100-sxm-80gb")
    pricer = Pricer(hw, TRAIN, Layout(dp=32, ep=16, etp=1), 32)
    group = pricer.groups["ep"]
    assert (group.size, group.ranks_per_node, group.nodes) == (16, 8, 2)
    c = pricer.collectives
    intra, off = c.all_to_all_parts(64e6, group)
    assert off == pytest.approx(c.alpha_net + 8 * 4e6 / c.net_bandwidth_bps(group), rel=1e-12)
    assert c.time("all-to-all", 64e6, group) == max(intra, off)


def test_mla_attention_flops():
    mla = MOE.replace(attention_kind="mla", q_lora_rank=256, kv_lora_rank=128, qk_nope_head_dim=64,
                      qk_rope_head_dim=32, v_head_dim=64)
    layer = _ops(Layout(dp=8), model=mla)
    core = next(op for op in layer.forward if op.name == "attention")
    # 2*b*heads*s^2*(d_qk + d_v): QK^T with width 96, PV with width 64
    assert core.forward_model_flops == 2 * 2 * 16 * 1024 * 1024 * (96 + 64)
    names = [op.name for op in layer.forward[:8]]
    assert names[:6] == ["norm1", "q_down", "q_norm", "q_up", "kv_down", "kv_norm"]


def test_dense_first_layers_on_stage_zero():
    dense_first = MOE.replace(num_dense_layers=1)
    step = build_step(dense_first, TRAIN, Layout(pp=2, dp=4, ep=4, etp=1))
    assert [s.layers for s in step.stages] == [1, 2]  # MoE layers; stage 0 holds the dense one in `pre`
    assert any(op.name == "fc1" for op in step.stages[0].pre.forward)
    full = build_step(MOE, TRAIN, Layout(pp=2, dp=4, ep=4, etp=1)).model_flops_per_step
    assert step.model_flops_per_step != full


def test_node_limited_dedup_dispatch_off_node_bytes():
    """DeepSeek-V3 Sec. 3.2.2: a token crosses to each of its <= 4 nodes once (deepep dispatcher); over
    an ep group of 8 nodes, 4 * 7/8 of one token copy leaves the node instead of 8 * 56/64 copies."""
    from planner.work.ops import TokenAllToAll

    hw = load_hardware("h100-sxm-80gb")
    ds = MOE.replace(num_experts=64, moe_top_k=8, moe_router_num_groups=8, moe_router_group_topk=4)
    plain = TRAIN.replace(global_batch_size=64)
    layer = _ops(Layout(dp=64, ep=64, etp=1), plain, ds)
    a2a = next(op for op in layer.forward if op.name == "moe.dispatch")
    assert isinstance(a2a, TokenAllToAll) and (a2a.copies, a2a.max_nodes, a2a.node_dedup) == (8, 4, False)
    pricer = Pricer(hw, plain, Layout(dp=64, ep=64, etp=1), 64)
    c, group = pricer.collectives, pricer.groups["ep"]
    _, off_plain = pricer.a2a_parts(a2a)
    assert off_plain == pytest.approx(c.alpha_net + a2a.bytes * 56 / 64 / c.net_bandwidth_bps(group), rel=1e-12)
    dedup = next(op for op in _ops(Layout(dp=64, ep=64, etp=1), plain.replace(moe_token_dispatcher="deepep"),
                                   ds).forward if op.name == "moe.dispatch")
    _, off_dedup = pricer.a2a_parts(dedup)
    assert off_dedup == pytest.approx(c.alpha_net + a2a.bytes / 8 * 4 * 7 / 8 / c.net_bandwidth_bps(group), rel=1e-12)
