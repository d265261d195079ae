"""Mapping of published-run CSV rows to scenarios (planner/bench/rows.py) and its documented defaults."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware
from planner.bench.accuracy import CONVENTIONS, default_csv
from planner.bench.rows import (
    Unmappable,
    build_case,
    flops_convention,
    parse_hardware_map,
    profile_for,
    read_rows,
)
from planner.errors import SpecError
from planner.specs import check_layout
from planner.work.conventions import korthikanti_model_flops, megatron_core_model_flops

ROWS = {r["row_id"]: r for r in read_rows(default_csv())}


def case(row_id: str, hardware_map=(), fits=lambda s: True, **changes):
    return build_case(dict(ROWS[row_id], **changes), hardware_map, load_hardware, fits)


@pytest.mark.parametrize(("hardware", "mem", "profile"), [
    ("A100-SXM4", "80", "a100-sxm-80gb"), ("A100-SXM4", "40", "a100-sxm-40gb"),
    ("H100-SXM", "80", "h100-sxm-80gb"), ("MI250X (per GCD)", "64", "mi250x-frontier"),
    ("V100-SXM3 (DGX-2)", "32", None),
])
def test_hardware_maps_to_profile(hardware, mem, profile):
    assert profile_for({"hardware": hardware, "gpu_mem_gb": mem}, ()) == profile


def test_hardware_map_entries_come_before_the_built_in_map():
    hm = parse_hardware_map(["A100@40=my-a100.yaml", "V100=v100.yaml"])
    assert profile_for({"hardware": "A100-SXM4", "gpu_mem_gb": "40"}, hm) == "my-a100.yaml"
    assert profile_for({"hardware": "A100-SXM4", "gpu_mem_gb": "80"}, hm) == "a100-sxm-80gb"
    assert profile_for({"hardware": "V100-SXM3", "gpu_mem_gb": "32"}, hm) == "v100.yaml"


@pytest.mark.parametrize("entry", ["A100", "=x", "A100@big=x", "A100="])
def test_malformed_hardware_map_is_a_spec_error(entry):
    with pytest.raises(SpecError, match="--hardware-map"):
        parse_hardware_map([entry])


def test_unmapped_hardware_is_skipped_with_the_reason():
    with pytest.raises(Unmappable, match="no hardware profile for 'V100"):
        case("142")


def test_fully_stated_row_uses_no_default():
    c = case("26")  # Korthikanti 175B, SP + selective; 'mixed' precision, same fp16/bf16 peak
    assert c.defaults_used == ()
    lay, trn = c.scenario.layout, c.scenario.training
    assert (lay.tp, lay.pp, lay.vpp, lay.dp, lay.schedule) == (8, 8, 3, 1, "interleaved-1f1b")
    assert lay.sequence_parallel and trn.recompute == "selective" and not trn.flash_attention
    assert c.measured_step_s == 13.75 and c.convention == "korthikanti-eq7"


def test_gpt_architecture_from_columns():
    m = case("26").scenario.model
    assert (m.num_layers, m.hidden_size, m.num_heads, m.ffn_hidden_size, m.vocab_size) == (96, 12288, 96, 49152, 51200)
    assert (m.ffn_kind, m.norm_kind, m.position_kind, m.tied_embeddings) == ("gelu", "layernorm", "learned", True)


def test_llama_like_name_gives_swiglu_rmsnorm_rope_untied():
    m = case("26", model="Llama-2-70B", kv_heads="8", ffn_hidden="28672", layers="80", hidden="8192",
             heads="64").scenario.model
    assert (m.ffn_kind, m.norm_kind, m.position_kind, m.tied_embeddings, m.linear_bias) == (
        "swiglu", "rmsnorm", "rope", False, False)
    assert m.kv_heads == 8


def test_notes_amend_the_architecture():
    mpt = case("73").scenario.model  # notes: ALiBi, no biases
    assert mpt.position_kind == "alibi" and not mpt.linear_bias
    bloom = case("34").scenario.model  # notes: Embed LayerNorm on
    assert bloom.embedding_norm and bloom.position_kind == "alibi"
    learned = case("73", notes="learned positional embeddings (NumParams grows with SeqLen); no biases").scenario.model
    assert learned.position_kind == "learned"  # the MPT yamls of llm-foundry 5e85bd62d: learned_pos_emb


def test_fsdp_sharding_strategies_map_to_their_layouts():
    grad_op = case("73", zero_or_fsdp="FSDP SHARD_GRAD_OP (ZeRO-2 equivalent)").scenario.layout
    assert (grad_op.zero_stage, grad_op.fsdp) == (2, False)
    hybrid = case("73", zero_or_fsdp="FSDP1 HYBRID_SHARD (shard group 4)").scenario.layout
    assert hybrid.fsdp and hybrid.dp_shard == 4
    node = case("73", zero_or_fsdp="FSDP1 HYBRID_SHARD").scenario.layout
    assert node.dp_shard == 8  # FSDP1's default: one node
    with pytest.raises(Unmappable, match="shard group"):
        case("73", zero_or_fsdp="HSDP shard group 3")


def test_unstated_micro_batch_and_interleaving_use_documented_defaults():
    c = case("9")  # Narayanan Table 1: 105 layers, pp 35, 'interleaved (chunks/stage not given)'
    assert c.scenario.training.micro_batch_size == 1
    assert c.scenario.layout.vpp == 3  # smallest v >= 2 dividing 105 / 35 = 3
    assert {"micro_batch", "vpp"} <= set(c.defaults_used)


def test_unstated_settings_of_a_megatron_core_row():
    c = case("97")
    lay, trn = c.scenario.layout, c.scenario.training
    assert lay.sequence_parallel  # 'not stated (standard with TP>1)'
    assert trn.flash_attention and trn.precision == "bf16" and trn.distributed_optimizer
    assert {"sequence_parallel", "flash_attention", "precision", "recompute", "micro_batch"} <= set(c.defaults_used)
    assert c.convention == "megatron-core"


def test_unstated_recompute_is_the_cheapest_that_fits():
    assert case("97", fits=lambda s: True).scenario.training.recompute == "none"
    only_full = case("97", fits=lambda s: s.training.recompute == "full")
    assert only_full.scenario.training.recompute == "full"


def test_global_batch_from_tokens_rounded_to_micro_batch_times_dp():
    c = case("35", micro_batch="1")  # OPT: 2M tokens / 2048, dp 124
    assert c.scenario.training.global_batch_size == 992
    assert "global_batch" in c.defaults_used


@pytest.mark.parametrize(("changes", "reason"), [
    ({"moe": "8 experts top-2"}, "MoE"),
    ({"heads": ""}, "architecture not stated: heads"),
    ({"zero_or_fsdp": "FSDP full shard + parameter CPU offload"}, "CPU offload"),
    ({"num_gpus": "100"}, "!= num_gpus"),
    ({"precision": "int4"}, "precision"),
])
def test_unmappable_rows_give_a_reason(changes, reason):
    with pytest.raises(Unmappable, match=reason):
        case("26", **changes)


@pytest.mark.parametrize(("row_id", "convention", "defaulted"), [
    ("1", "megatron-eq3", False), ("23", "korthikanti-eq7", False), ("31", "korthikanti-eq7", False),
    ("34", "bigscience", False), ("69", "mosaicml", False), ("91", "megatron-core", False),
    ("139", "megatron-eq3", False), ("39", "gpt-neox", False),
    ("89", None, False),
])
def test_flops_convention_of_shipped_rows(row_id, convention, defaulted):
    assert flops_convention(ROWS[row_id]) == (convention, defaulted)


def test_derived_sec_per_iter_is_not_compared():
    assert case("1").measured_step_s is None  # back-computed from Eq. 3 by the hand-over
    assert case("34").measured_step_s == 104.7  # read from the BLOOM log


def test_convention_applied_to_the_measured_time_reproduces_the_row():
    c = case("23")  # Korthikanti 22B: 1.42 s per step, 100.2 TFLOP/s per GPU (Eq. 7)
    tflops = CONVENTIONS[c.convention](c.inputs) / (c.measured_step_s * c.scenario.gpus) / 1e12
    assert tflops == pytest.approx(c.measured_tflops, rel=0.01)


def test_megatron_core_flops_equal_eq7_for_mha_and_4h_ffn():
    args = (64, 2048, 96, 12288)
    assert megatron_core_model_flops(*args, 96, 96, 128, 49152, 51200) == pytest.approx(
        korthikanti_model_flops(*args, 51200), rel=1e-12)


def test_megatron_core_flops_count_gqa_and_swiglu():
    mha = megatron_core_model_flops(1, 4096, 32, 4096, 32, 32, 128, 14336, 128256)
    gqa = megatron_core_model_flops(1, 4096, 32, 4096, 32, 8, 128, 14336, 128256)
    glu = megatron_core_model_flops(1, 4096, 32, 4096, 32, 8, 128, 14336, 128256, swiglu=True)
    # K and V shrink by 4x: 12*B*s*L*h^2*(1 - 8/32) less; SwiGLU adds half the FFN term
    assert mha - gqa == pytest.approx(12 * 4096 * 32 * 4096**2 * 0.75)
    assert glu - gqa == pytest.approx(12 * 4096 * 32 * 4096**2 * (14336 / 4096) * 0.5)


def test_csv_missing_columns_is_a_spec_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("row_id,model\n1,x\n")
    with pytest.raises(SpecError, match="missing columns"):
        read_rows(path)


def test_uneven_megatron_interleaved_row_uses_megatrons_split():
    c = case("147")  # Qwen3-235B: 94 layers on pp8 x vpp4 (Megatron-Bridge)
    lay = c.scenario.layout
    assert (lay.pp, lay.vpp, lay.schedule) == (8, 4, "interleaved-1f1b")
    assert lay.stage_layers == [11, 12, 12, 12, 12, 12, 12, 11]  # default_stage_layers(94, 8)
    from planner.frameworks import refusal, virtual_stage_layers
    chunks = virtual_stage_layers(lay, c.scenario.model)
    assert sum(chunks) == 94 and (chunks[0], chunks[-1]) == (2, 2) and max(chunks) == 3
    assert refusal("megatron", c.scenario.model, c.scenario.training, lay) is None
    deepseek = case("149").scenario  # 61 layers, 3 dense ones on stage 0
    assert deepseek.layout.stage_layers == [7, 8, 8, 8, 8, 8, 8, 6]


def test_uneven_split_only_for_megatron_frameworks():
    assert case("34").scenario.layout.stage_layers is None  # BLOOM, Megatron-DeepSpeed: 70 layers on pp12
    other = case("147", framework="Meta internal", zero_or_fsdp="").scenario  # not Megatron: no split implied
    assert other.layout.stage_layers is None
    with pytest.raises(SpecError, match=r"num_layers\(94\) % \(pp\(8\) \* vpp\(4\)\)"):
        check_layout(other.layout, other.model, other.training, other.gpus)


def test_unstated_expert_tp_that_breaks_the_expert_grid_is_derived():
    unstated = ROWS["147"]["moe"].replace("; etp 1", "")
    c = case("147", moe=unstated)  # tp2 dp16 ep32: ep * etp must divide tp * dp = 32, so etp = 1
    assert c.scenario.layout.etp == 1 and "etp" in c.defaults_used
    d = case("149", moe=ROWS["149"]["moe"].replace("; etp 1", ""))  # tp2 dp64 ep64: Megatron-Core's etp = tp fits
    assert d.scenario.layout.etp is None and "etp" not in d.defaults_used
    stated = case("147", moe=unstated + "; etp 2").scenario  # a stated etp is kept, and refused
    assert stated.layout.etp == 2
    with pytest.raises(SpecError, match="layout.ep"):
        check_layout(stated.layout, stated.model, stated.training, stated.gpus)


def test_tp_comm_overlap_as_the_notes_state_it():
    """A row's run config turns TP-comm overlap off (Megatron-Bridge's CommOverlapConfig(tp_comm_overlap=False),
    a launch script without the flag) or on; unstated leaves the recipe's default."""
    from planner.bench.rows import row_tp_comm_overlap

    assert row_tp_comm_overlap("h100 config: CommOverlapConfig(tp_comm_overlap=False)") is False
    assert row_tp_comm_overlap("no --tp-comm-overlap at b0b92ff") is False
    assert row_tp_comm_overlap("DP/TP/PP comm overlap on (--tp-comm-overlap)") is True
    assert row_tp_comm_overlap("nothing said") is None
    assert row_tp_comm_overlap(ROWS["147"]["notes"]) is False


def test_a_stated_node_network_scales_the_profile_nics():
    """fms-fsdp's H100 cluster: '800 Gbps inter-node' per node, a quarter of a DGX H100's 8 x 400 Gb/s."""
    from planner.bench.row_hardware import row_hardware

    hw = load_hardware("h100-sxm-80gb")
    slow = row_hardware(hw, {"hardware": "H100-SXM", "interconnect": "800 Gbps inter-node per node (source)"})
    assert sum(n.bandwidth_gbps for n in slow.node.nics) == pytest.approx(100.0)  # GB/s
    assert [n.devices for n in slow.node.nics] == [n.devices for n in hw.node.nics]
    same = row_hardware(hw, {"hardware": "H100-SXM", "interconnect": "8x400 Gb/s InfiniBand"})
    assert same is hw  # states no per-node figure: the profile's own network


def test_a_node_network_stated_as_links_is_their_count_times_their_rate():
    """BLOOM's Jean Zay: four Omni-Path 100 Gb/s links per node, a quarter of a DGX A100's 8 x HDR 200 Gb/s; a rate in
    GB/s is bytes; a rate per GPU is not a node's; links that add up to the profile's leave it as it is."""
    from planner.bench.row_hardware import row_hardware, row_node_network_gbit

    assert row_node_network_gbit(ROWS["34"]) == pytest.approx(400.0)
    assert row_node_network_gbit({"interconnect": "InfiniBand 8x50 GB/s per node (setup)"}) == pytest.approx(3200.0)
    assert row_node_network_gbit({"interconnect": "4x Slingshot-11 200 Gb/s NICs per node, dragonfly"}) == 800.0
    assert row_node_network_gbit({"interconnect": "RoCE 400 Gb/s per GPU, three-layer Clos"}) is None
    hw = load_hardware("a100-sxm-80gb")
    jean_zay = row_hardware(hw, ROWS["34"])
    assert sum(n.bandwidth_gbps for n in jean_zay.node.nics) == pytest.approx(50.0)  # GB/s: 4 x 100 Gb/s
    assert row_hardware(hw, ROWS["1"]) is hw  # Selene: 8 x HDR 200 Gb/s, the profile's own
