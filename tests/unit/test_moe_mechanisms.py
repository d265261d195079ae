"""The MoE layer's priced mechanisms (issue 23): dropless host sync and count exchange, the permutation's
index pass, the combined-1F1B all-to-all overlap, FSDP / ZeRO-3 with expert parallelism, MTP modules,
sliding-window attention, and Megatron's pipeline layout strings. One behaviour per test, small exact values."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware, load_model
from planner.errors import SpecError
from planner.pricing import Pricer
from planner.pricing.compute import sm_share_slowdown
from planner.pricing.moe_overlap import dispatcher_sms, overlap_fraction, paired_layer_time, synced_block
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec, check_layout
from planner.specs.pipeline_layout import layout_string, parse_pipeline_layout, symbol_count
from planner.work.expert_states import expert_dp_comm, expert_state_bytes
from planner.work.layer import backward_of, layer_forward
from planner.work.ops import Attention, CountExchange, HostSync
from planner.work.step import build_step

Q30 = load_model("qwen3-30b-a3b")
H100 = load_hardware("h100-sxm-80gb")


def _fwd(training: TrainingSpec, layout: Layout) -> list:
    return layer_forward(Q30, training, layout)


def test_dropless_alltoall_exchanges_counts_and_syncs_the_host():
    ops = _fwd(TrainingSpec(global_batch_size=8, seq_length=1024), Layout(dp=8, ep=8))
    names = [op.name for op in ops]
    assert names.index("moe.split_sizes") < names.index("moe.sync") < names.index("moe.dispatch")
    count = next(op for op in ops if isinstance(op, CountExchange))
    assert count.bytes == 128 * 8 * 8  # E int64 counts gathered over the ep group of 8


def test_deepep_syncs_without_a_separate_count_exchange():
    ops = _fwd(TrainingSpec(global_batch_size=8, seq_length=1024, moe_token_dispatcher="deepep"), Layout(dp=8, ep=8))
    assert any(isinstance(op, HostSync) for op in ops)
    assert not any(isinstance(op, CountExchange) for op in ops)


def test_padded_dispatch_has_fixed_shapes_and_no_sync():
    ops = _fwd(TrainingSpec(global_batch_size=8, seq_length=1024, moe_capacity_factor=1.0), Layout(dp=8, ep=8))
    assert not any(isinstance(op, (HostSync, CountExchange)) for op in ops)


def test_counts_and_syncs_have_no_backward():
    bwd = backward_of(_fwd(TrainingSpec(global_batch_size=8, seq_length=1024), Layout(dp=8, ep=8)))
    assert not any(op.name.startswith(("moe.split_sizes", "moe.sync", "moe.permute.index")) for op in bwd)


def test_permutation_index_pass_reads_the_routing_map():
    ops = _fwd(TrainingSpec(global_batch_size=8, seq_length=1024), Layout(dp=8, ep=8))
    index = next(op for op in ops if op.name == "moe.permute.index")
    assert index.bytes_moved == 1024 * 128 * (1 + 1 + 8)  # T x E: bool map read + transposed, int64 index


def test_a_synced_block_cannot_be_dispatched_ahead():
    assert synced_block(1.0, 0.2, 0.0, 1.5, 0, 1e-5) == (1.0, 1.5)  # no sync: left to the pass floor
    assert synced_block(1.0, 0.2, 0.0, 1.5, 1, 1e-5) == pytest.approx((1.3 + 1e-5, 1.5 + 1e-5))


def test_paired_layer_time_follows_megatrons_schedule_plan():
    # max(C_b, P_f) + max(D_f, M_b) + max(D_b, M_f) + max(C_f, P_b), no SM share
    assert paired_layer_time(1, 2, 3, 4, 5, 6, 7, 8) == 8 + 7 + 6 + 5
    # a phase whose slowed compute outlasts its comm: compute + min(comm, compute) x its slowdown (beside_slowdown)
    assert paired_layer_time(10, 0, 0, 0, 0, 0, 0, 1, slowdowns=(0.5, 0, 0, 0)) == pytest.approx(10 + 0.5)
    # a comm phase the slowed compute fits under costs the comm alone
    assert paired_layer_time(1, 0, 0, 0, 0, 0, 0, 3, slowdowns=(1.0, 0, 0, 0)) == pytest.approx(3)


def test_overlap_fraction_leaves_out_the_warmup():
    assert overlap_fraction(10, 1, 1) == pytest.approx(0.9)
    assert overlap_fraction(16, 4, 2) == pytest.approx((32 - (3 * 2 + 4 + 1)) / 32)


def test_dispatchers_take_their_sms_and_one_formula_prices_the_share():
    assert dispatcher_sms("deepep", 16) == 20 and dispatcher_sms("hybridep", 16) == 16
    assert dispatcher_sms("alltoall", 16) == 16  # NCCL's all-to-all: the profile's collective channels
    assert sm_share_slowdown(20, 132) == pytest.approx(20 / 112)
    assert sm_share_slowdown(None, 132) == 0.0 and sm_share_slowdown(16, None) == 0.0


def test_expert_comm_slowdown_follows_the_dispatcher():
    lay = Layout(dp=8, ep=8)
    nccl = Pricer(H100, TrainingSpec(global_batch_size=8, seq_length=1024), lay, 8)
    deepep = Pricer(H100, TrainingSpec(global_batch_size=8, seq_length=1024, moe_token_dispatcher="deepep"), lay, 8)
    assert nccl.expert_comm_slowdown() == pytest.approx(nccl.comm_compute_slowdown())  # same SMs, same formula
    assert deepep.expert_comm_slowdown() == pytest.approx(20 / (132 - 20))  # no single-stream GEMM: SM share
    # the H100's persistent GEMMs beside the dispatcher run in two waves: one extra second per second
    assert deepep.expert_comm_slowdown(1.0) == pytest.approx(1.0)
    assert deepep.expert_comm_slowdown(0.5) == pytest.approx(0.5 + 0.5 * 20 / 112)


def test_a2a_overlap_hides_all_to_all_time():
    lay = Layout(dp=32, ep=32, etp=1)
    base = dict(global_batch_size=256, seq_length=4096, recipe="megatron-core", moe_token_dispatcher="deepep")
    off = Scenario(model=Q30, hardware=H100, gpus=32, training=TrainingSpec(**base), layout=lay).estimate()
    on = Scenario(model=Q30, hardware=H100, gpus=32, training=TrainingSpec(**base, moe_a2a_overlap=True),
                  layout=lay).estimate()
    assert on.time.tp_comm < off.time.tp_comm and on.step_time_s < off.step_time_s


def test_fsdp_with_ep_shards_experts_over_edp():
    lay = Layout(dp=64, ep=8, fsdp=True)  # edp = 64 / 8
    trn = TrainingSpec(global_batch_size=64, recipe="torchtitan")
    check_layout(lay, Q30, trn, 64)
    states = expert_state_bytes(1e9, trn, lay)
    per = 4 + 4 + 8  # torchtitan: fp32 weights, grads, Adam moments
    assert states.weights + states.grads + states.optimizer == pytest.approx(1e9 * per / 8)


def test_fsdp_with_ep_gathers_and_reduces_experts_every_micro_batch():
    lay = Layout(dp=64, ep=8, fsdp=True)
    per_mb, per_step = expert_dp_comm(1e9, TrainingSpec(global_batch_size=64, recipe="torchtitan"), lay, units=48)
    assert per_step == ()
    assert [(c.kind, c.axis, c.calls) for c in per_mb] == [("all-gather", "edp", 48)] * 2 + [
        ("reduce-scatter", "edp", 48)]


def test_hybrid_sharding_of_a_moe_model_is_refused():
    with pytest.raises(SpecError, match="dp_shard"):
        check_layout(Layout(dp=16, dp_shard=8, ep=8, fsdp=True), Q30, TrainingSpec(global_batch_size=64), 16)


def test_mtp_adds_a_layer_and_a_head_to_the_last_stage():
    lay = Layout(pp=2, dp=4, ep=4)
    plain = build_step(Q30, TrainingSpec(global_batch_size=32), lay)
    mtp = build_step(Q30, TrainingSpec(global_batch_size=32, mtp_layers=1), lay)
    assert mtp.stages[0].model_flops_per_microbatch == plain.stages[0].model_flops_per_microbatch
    names = [op.name for op in mtp.stages[-1].post.forward]
    assert "mtp0.eh_proj" in names and names.count("logits") == 2
    assert mtp.stages[-1].params > plain.stages[-1].params


def test_sliding_window_prices_the_band():
    full = Attention("a", 8, 4096, 4096, 64, "fwd")
    window = Attention("a", 8, 4096, 4096, 64, "fwd", window=128, window_share=1.0)
    band = 128 * 129 / 2 + (4096 - 128) * 128  # causal band entries
    assert window.window_fraction == pytest.approx(band / (4096 * 4097 / 2))
    assert window.executed_flops == pytest.approx(full.executed_flops * window.window_fraction)
    half = Attention("a", 8, 4096, 4096, 64, "fwd", window=128, window_share=0.5)
    assert half.flops == pytest.approx((full.flops + window.flops) / 2)


def test_gpt_oss_imports_its_sliding_window_layers():
    m = load_model("tests/data/hf/gpt-oss-120b")
    assert (m.sliding_window, m.sliding_window_layers, m.ffn_kind) == (128, 18, "geglu")


def test_megatron_layout_string_of_deepseek_v3():
    lay = parse_pipeline_layout("Et|(tt|)*30mL", 8, 4, 61, 1)
    assert lay.stage_layers == [7, 8, 8, 8, 8, 8, 8, 6]
    assert lay.virtual_layers[0] == 1 and lay.virtual_layers[-1] == 0 and lay.mtp_layers == 1
    assert symbol_count("(tt|)*3", "t") == 6
    assert layout_string([1, 2, 0], 1) == "E,t*1|t*2|m,L"


@pytest.mark.parametrize(("text", "match"), [
    ("Et|(tt|)*30L", "MTP modules"), ("t|(tt|)*30mLE", "embedding"), ("Et|(tt|)*29mL", "virtual stages"),
    ("Ex|(tt|)*30mL", "symbols"), ("Et|(tt|)*29ttt|mL", "transformer layers"),
])
def test_bad_layout_strings_name_what_is_wrong(text, match):
    with pytest.raises(SpecError, match=match):
        parse_pipeline_layout(text, 8, 4, 61, 1)
