"""Hugging Face config.json import and export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwprofiles.hf_config import SUPPORTED_MODEL_TYPES, model_from_hf_config, model_to_hf_config
from hwprofiles.loader import list_models, load_model
from planner.errors import SpecError
from planner.specs import ModelSpec

HF = Path(__file__).resolve().parents[1] / "data" / "hf"


def config(name: str) -> dict:
    return json.loads((HF / name / "config.json").read_text())


def imported(data: dict, name: str = "m") -> ModelSpec:
    return model_from_hf_config(data, source="config.json", default_name=name)


@pytest.mark.parametrize("folder", sorted(p.name for p in HF.iterdir() if p.is_dir()))
def test_every_fixture_loads_by_path_named_after_its_folder(folder):
    model = load_model(str(HF / folder / "config.json"))
    assert model.name == folder
    assert model.source.endswith("config.json")


def test_llama3_fields():
    m = imported(config("llama3-8b"))
    assert (m.num_layers, m.hidden_size, m.num_heads, m.kv_heads, m.ffn_hidden_size) == (32, 4096, 32, 8, 14336)
    assert (m.ffn_kind, m.norm_kind, m.position_kind, m.tied_embeddings, m.linear_bias) == (
        "swiglu", "rmsnorm", "rope", False, False)
    assert m.vocab_size == 128256


def test_qwen2_has_qkv_bias_only():
    m = imported(config("qwen2-7b"))
    assert m.qkv_bias and not m.linear_bias


def test_gpt2_keys_and_default_inner_width():
    data = config("gpt2")
    assert "n_inner" not in data
    m = imported(data)
    assert (m.num_layers, m.hidden_size, m.num_heads, m.ffn_hidden_size) == (12, 768, 12, 3072)
    assert (m.position_kind, m.max_position_embeddings, m.tied_embeddings, m.ffn_kind) == ("learned", 1024, True, "gelu")


def test_gpt_neox_is_rotary_layernorm_untied():
    m = imported(config("gpt-neox-20b"))
    assert (m.position_kind, m.norm_kind, m.tied_embeddings, m.linear_bias) == ("rope", "layernorm", False, True)


def test_mixtral_moe_fields():
    m = imported(config("mixtral-8x7b"))
    assert (m.num_experts, m.moe_top_k, m.expert_ffn_hidden_size) == (8, 2, 14336)


def test_missing_hidden_size_names_key_file_and_type():
    data = config("llama3-8b")
    del data["hidden_size"]
    with pytest.raises(SpecError) as info:
        imported(data)
    assert str(info.value) == "config.json: hidden_size: required key missing for model_type llama"


def test_unknown_model_type_lists_supported():
    with pytest.raises(SpecError, match="unsupported model_type 't5'; supported: " + ", ".join(SUPPORTED_MODEL_TYPES)):
        imported({"model_type": "t5"})


def test_missing_model_type():
    with pytest.raises(SpecError, match="model_type: required key missing"):
        imported({"hidden_size": 8})


def test_wrong_value_type_is_named():
    data = config("mistral-7b")
    data["num_hidden_layers"] = "32"
    with pytest.raises(SpecError, match="num_hidden_layers: expected a positive integer, got '32'"):
        imported(data)


def test_llama_with_gelu_is_refused_with_allowed_value():
    data = config("llama2-70b")
    data["hidden_act"] = "gelu"
    with pytest.raises(SpecError, match="hidden_act: unsupported activation 'gelu'.*allowed: silu"):
        imported(data)


def test_spec_validation_error_names_the_file():
    data = config("llama3-8b")
    data["num_key_value_heads"] = 5
    with pytest.raises(SpecError, match=r"^config.json: .*num_kv_heads\(5\)"):
        imported(data)


def test_malformed_json_names_file_and_line(tmp_path):
    bad = tmp_path / "broken" / "config.json"
    bad.parent.mkdir()
    bad.write_text('{"model_type": "llama",\n "hidden_size": }')
    with pytest.raises(SpecError, match=r"config.json: malformed JSON \(line 2\)"):
        load_model(str(bad))


@pytest.mark.parametrize("name", list_models())
def test_zoo_round_trip_through_hf_dict(name):
    model = load_model(name)
    data = json.loads(json.dumps(model_to_hf_config(model)))
    assert model_from_hf_config(data, source=model.source, default_name=model.name) == model


@pytest.mark.parametrize("folder", ["llama3-8b", "qwen2-7b", "gpt2", "gpt-neox-20b", "mixtral-8x7b"])
def test_fixture_round_trip(folder):
    model = imported(config(folder), folder)
    assert imported(model_to_hf_config(model), folder) == model


def test_export_refuses_a_spec_no_model_type_expresses():
    odd = ModelSpec(name="odd", num_layers=2, hidden_size=8, num_heads=2, ffn_hidden_size=16, vocab_size=10,
                    position_kind="rope", norm_kind="rmsnorm", ffn_kind="gelu")
    with pytest.raises(SpecError, match="cannot be written as a Hugging Face gpt_neox config.*norm_kind"):
        model_to_hf_config(odd)
