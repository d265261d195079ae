"""Zoo files load, and parameter counting is exact on small hand-checked models."""

from __future__ import annotations

import pytest

from hwprofiles.loader import list_models, load_model, models_dir, read_yaml
from planner.errors import NotFoundError, SpecError
from planner.specs import ModelSpec
from planner.work.params import (
    deepspeed_pipeline_total_params,
    parameter_counts,
    tensor_parallel_replicated_parameters,
)

REQUIRED_ZOO = [
    "frontier-22b", "frontier-175b", "frontier-1t", "gpt3-125m", "gpt3-175b", "megatron-1.7b", "megatron-1t",
    "llama2-7b", "llama2-13b", "llama2-70b", "llama3-8b", "llama3-70b", "llama3.1-405b", "bloom-176b",
    "mixtral-8x7b",
]


def tiny(**changes) -> ModelSpec:
    """h=4, 2 heads, 1 layer, FFN 8, vocab 10, 6 learned positions, GPT-style (biases, LayerNorm, tied)."""
    base = dict(name="tiny", num_layers=1, hidden_size=4, num_heads=2, ffn_hidden_size=8, vocab_size=10,
                max_position_embeddings=6)
    base.update(changes)
    return ModelSpec(**base)


@pytest.mark.parametrize("name", list_models())
def test_every_zoo_file_loads_with_its_name_and_a_source(name):
    model = load_model(name)
    assert model.name == name
    assert len(model.source) > 40
    assert read_yaml(models_dir() / f"{name}.yaml")["name"] == name


def test_zoo_has_the_issue_models():
    assert set(REQUIRED_ZOO) <= set(list_models())


def test_unknown_model_suggests_closest():
    with pytest.raises(NotFoundError, match="did you mean: llama3-8b"):
        load_model("llama3-8")


def test_gpt_style_layer_counts_by_hand():
    c = parameter_counts(tiny())
    # qkv 4x12 + 12 bias, out 4x4 + 4 bias
    assert c.per_layer.attention == 48 + 12 + 16 + 4
    # fc1 4x8 + 8, fc2 8x4 + 4
    assert c.per_layer.mlp == 32 + 8 + 32 + 4
    assert c.per_layer.norms == 2 * (4 + 4)
    assert (c.embedding, c.position_embedding, c.final_norm, c.output_projection) == (40, 24, 8, 0)
    assert c.total == 80 + 76 + 16 + 40 + 24 + 8
    assert c.non_embedding == 80 + 76 + 16 + 8
    assert c.active == c.total


def test_gqa_narrows_k_and_v():
    c = parameter_counts(tiny(num_heads=4, num_kv_heads=1, hidden_size=8, linear_bias=False))
    # head dim 2: q 8x8, k 8x2, v 8x2, out 8x8
    assert c.per_layer.attention == 64 + 16 + 16 + 64


def test_explicit_head_dim_changes_projection_width():
    c = parameter_counts(tiny(head_dim=3, linear_bias=False))
    assert c.per_layer.attention == 4 * 6 * 3 + 6 * 4


def test_swiglu_has_three_matrices_and_rmsnorm_a_weight_only():
    c = parameter_counts(tiny(ffn_kind="swiglu", norm_kind="rmsnorm", linear_bias=False, position_kind="rope"))
    assert c.per_layer.mlp == 3 * 4 * 8
    assert c.per_layer.norms == 2 * 4
    assert c.final_norm == 4
    assert c.position_embedding == 0


def test_qkv_bias_only():
    c = parameter_counts(tiny(linear_bias=False, qkv_bias=True))
    assert c.per_layer.attention == 64 + 12
    assert c.per_layer.mlp == 64


def test_untied_adds_output_projection_and_embedding_norm():
    c = parameter_counts(tiny(tied_embeddings=False, embedding_norm=True))
    assert c.output_projection == 40
    assert c.embedding_norm == 8
    assert c.total == parameter_counts(tiny()).total + 48


def test_moe_counts_router_all_experts_and_active_experts():
    m = tiny(num_experts=4, moe_top_k=2, expert_ffn_hidden_size=2, linear_bias=False, num_shared_experts=1)
    c = parameter_counts(m)
    expert = 2 * 4 * 2
    assert c.per_layer.mlp == 4 * 4 + 5 * expert
    assert c.per_layer.mlp_active == 4 * 4 + 3 * expert
    assert c.total - c.active == 2 * expert


def test_deepspeed_total_equals_unique_without_model_parallelism():
    m = tiny()
    assert deepspeed_pipeline_total_params(m, 1, 1) == parameter_counts(m).total


def test_deepspeed_total_counts_replicas_and_the_tied_embedding_copy():
    m = tiny()
    replicated = tensor_parallel_replicated_parameters(m)
    # per layer: 2 LayerNorms (16) + out/fc2 biases (8); final norm 8; positions 24
    assert replicated == 16 + 8 + 8 + 24
    assert deepspeed_pipeline_total_params(m, 2, 1) == parameter_counts(m).total + replicated
    assert deepspeed_pipeline_total_params(m, 1, 2) == parameter_counts(m).total + 40 + 24


def test_deepspeed_total_rejects_moe_and_bad_degrees():
    with pytest.raises(SpecError):
        deepspeed_pipeline_total_params(tiny(num_experts=2, moe_top_k=1), 2, 2)
    with pytest.raises(SpecError, match="tp"):
        deepspeed_pipeline_total_params(tiny(), 0, 1)
