"""The model half of the Megatron export is generated from the ModelSpec (issue 25): MLA, the dense /
MoE layer pattern, the router, shared experts, QK norm and the RoPE base of each zoo model."""

from __future__ import annotations

import pytest

from hwprofiles import list_models, load_model
from planner.exports.megatron_model import model_args, moe_layer_pattern
from planner.specs import TrainingSpec

TRAIN = TrainingSpec(global_batch_size=8, seq_length=4096)


def value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_deepseek_v3_carries_mla_dense_layers_and_its_router():
    a = model_args(load_model("deepseek-v3"), TRAIN, tp=1)
    assert "--multi-latent-attention" in a and "--group-query-attention" not in a
    assert [value(a, f) for f in ("--q-lora-rank", "--kv-lora-rank", "--qk-head-dim", "--qk-pos-emb-head-dim",
                                  "--v-head-dim")] == ["1536", "512", "128", "64", "128"]
    assert value(a, "--moe-layer-freq") == "([0]*3+[1]*58)" and eval(value(a, "--moe-layer-freq")).count(0) == 3
    assert value(a, "--ffn-hidden-size") == "18432" and value(a, "--moe-ffn-hidden-size") == "2048"
    assert value(a, "--moe-router-score-function") == "sigmoid" and "--moe-router-enable-expert-bias" in a
    assert (value(a, "--moe-router-num-groups"), value(a, "--moe-router-group-topk")) == ("8", "4")
    assert value(a, "--moe-shared-expert-intermediate-size") == "2048"


def test_qwen3_moe_carries_qk_norm_head_width_and_rope_base():
    a = model_args(load_model("qwen3-30b-a3b"), TRAIN, tp=1)
    assert "--qk-layernorm" in a and value(a, "--kv-channels") == "128"
    assert value(a, "--rotary-base") == "1000000" and "--moe-layer-freq" not in a
    assert "--moe-router-score-function" not in a  # softmax, Megatron's default


def test_gpt_oss_keeps_biases_and_its_router_bias_rides_on_them():
    a = model_args(load_model("gpt-oss-120b"), TRAIN, tp=1)
    assert "--disable-bias-linear" not in a and "--moe-router-enable-expert-bias" not in a
    assert value(a, "--rotary-base") == "150000"


def test_moe_layer_pattern_counts_every_layer():
    m = load_model("deepseek-v3")
    assert len(eval(moe_layer_pattern(m))) == m.num_layers


@pytest.mark.parametrize("name", list_models())
def test_every_rope_zoo_model_states_its_rope_base(name):
    m = load_model(name)
    assert m.position_kind != "rope" or m.rope_theta is not None
