"""Hugging Face ``config.json`` ⇄ ModelSpec, for the model types users already have configs for.

Key names and defaults follow the ``transformers`` configuration classes (LlamaConfig,
MistralConfig, Qwen2Config, Qwen3Config, Phi3Config, MixtralConfig, GPT2Config, GPTNeoXConfig,
BloomConfig; the MoE, MLA and Gemma readers are in ``hwprofiles.hf_moe``). A missing
required key or an unsupported value raises a SpecError naming the key, the file and what is
allowed. ``model_to_hf_config`` writes the inverse and refuses a spec it cannot express exactly.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from planner.errors import SpecError, format_validation_error
from planner.specs import ModelSpec

from .hf_moe import READERS as MOE_READERS
from .hf_moe import moe_to_hf
from .hf_reader import _GELU, _llama_like, _Reader

LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3", "phi3", "mixtral")
MOE_AND_OTHER_TYPES = ("qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3", "gpt_oss", "gemma", "gemma2")
SUPPORTED_MODEL_TYPES = (*LLAMA_LIKE, "gpt2", "gpt_neox", "bloom", *MOE_AND_OTHER_TYPES)

#: transformers model classes (a config's ``architectures``) -> model_type, for configs without one.
ARCHITECTURE_TYPES = {
    "LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3", "Phi3ForCausalLM": "phi3", "MixtralForCausalLM": "mixtral",
    "GPT2LMHeadModel": "gpt2", "GPTNeoXForCausalLM": "gpt_neox", "BloomForCausalLM": "bloom",
    "Qwen2MoeForCausalLM": "qwen2_moe", "Qwen3MoeForCausalLM": "qwen3_moe", "DeepseekV2ForCausalLM": "deepseek_v2",
    "DeepseekV3ForCausalLM": "deepseek_v3", "GptOssForCausalLM": "gpt_oss", "GemmaForCausalLM": "gemma",
    "Gemma2ForCausalLM": "gemma2",
}

def _gelu_or_relu(r: _Reader, key: str, default: str) -> str:
    act = r.str(key, default)
    if act in _GELU:
        return "gelu"
    if act == "relu":
        return "relu"
    raise r.error(key, f"unsupported activation {act!r}; allowed: relu, " + ", ".join(sorted(_GELU)))


def _gpt2(r: _Reader) -> dict[str, Any]:
    hidden = r.int("n_embd")
    return dict(
        num_layers=r.int("n_layer"), hidden_size=hidden, num_heads=r.int("n_head"),
        ffn_hidden_size=r.int("n_inner", 4 * hidden), ffn_kind=_gelu_or_relu(r, "activation_function", "gelu_new"),
        norm_kind="layernorm", vocab_size=r.int("vocab_size"), tied_embeddings=r.bool("tie_word_embeddings", True),
        position_kind="learned", max_position_embeddings=r.int("n_positions"), linear_bias=True,
    )


def _gpt_neox(r: _Reader) -> dict[str, Any]:
    # use_parallel_residual and rotary_pct change the dataflow, not the parameter count.
    return dict(
        num_layers=r.int("num_hidden_layers"), hidden_size=r.int("hidden_size"),
        num_heads=r.int("num_attention_heads"), ffn_hidden_size=r.int("intermediate_size"),
        ffn_kind=_gelu_or_relu(r, "hidden_act", "gelu"), norm_kind="layernorm", vocab_size=r.int("vocab_size"),
        tied_embeddings=r.bool("tie_word_embeddings", False), position_kind="rope",
        max_position_embeddings=r.int("max_position_embeddings", 2048),
        linear_bias=r.bool("attention_bias", True),
    )


def _bloom(r: _Reader) -> dict[str, Any]:
    # BloomConfig maps hidden_size -> n_embed; the MLP is always 4h GELU, ALiBi, embedding LayerNorm.
    hidden = r.int("n_embed") if "n_embed" in r.data else r.int("hidden_size")
    heads = r.int("n_head") if "n_head" in r.data else r.int("num_attention_heads")
    return dict(
        num_layers=r.int("n_layer"), hidden_size=hidden, num_heads=heads, ffn_hidden_size=4 * hidden,
        ffn_kind="gelu", norm_kind="layernorm", vocab_size=r.int("vocab_size"),
        tied_embeddings=r.bool("tie_word_embeddings", True), position_kind="alibi",
        max_position_embeddings=r.int("seq_length", 2048), linear_bias=True, embedding_norm=True,
    )


_READERS = {"gpt2": _gpt2, "gpt_neox": _gpt_neox, "bloom": _bloom, **{t: _llama_like for t in LLAMA_LIKE}}


def model_from_hf_config(data: dict[str, Any], *, source: str, default_name: str) -> ModelSpec:
    """A ModelSpec from a parsed Hugging Face ``config.json`` mapping.

    ``source`` (the file path) goes into error messages and ``ModelSpec.source``; the model is named
    ``default_name`` (normally the folder holding config.json).
    """
    model_type = data.get("model_type")
    architectures = data.get("architectures")
    if model_type is None and isinstance(architectures, list):
        model_type = next((ARCHITECTURE_TYPES[a] for a in architectures if isinstance(a, str)
                           and a in ARCHITECTURE_TYPES), None)
    if model_type is None:
        raise SpecError("required key missing; supported: " + ", ".join(SUPPORTED_MODEL_TYPES),
                        field="model_type", source=source)
    readers = {**_READERS, **MOE_READERS}
    if not isinstance(model_type, str) or model_type not in readers:
        raise SpecError(f"unsupported model_type {model_type!r}; supported: " + ", ".join(SUPPORTED_MODEL_TYPES),
                        field="model_type", source=source)
    fields = readers[model_type](_Reader(data, source, model_type))
    try:
        return ModelSpec(name=default_name, source=source, **fields)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), source=source) from None


def _hf_model_type(model: ModelSpec) -> str:
    if model.is_moe:
        return "mixtral"
    if model.position_kind == "alibi":
        return "bloom"
    if model.position_kind == "learned":
        return "gpt2"
    if model.ffn_kind == "swiglu":
        return "qwen2" if model.qkv_bias else "llama"
    return "gpt_neox"


def model_to_hf_config(model: ModelSpec) -> dict[str, Any]:
    """A Hugging Face-style ``config.json`` mapping for ``model`` (the inverse of ``model_from_hf_config``).

    Raises SpecError when no supported model_type expresses the spec exactly (e.g. RoPE with
    RMSNorm and GELU): re-importing the result must give back the same spec.
    """
    special = moe_to_hf(model)
    model_type = special["model_type"] if special else _hf_model_type(model)
    if special:
        out = special
    elif model_type == "gpt2":
        out: dict[str, Any] = dict(
            model_type="gpt2", n_embd=model.hidden_size, n_layer=model.num_layers, n_head=model.num_heads,
            n_inner=model.ffn_hidden_size, activation_function="gelu_new" if model.ffn_kind == "gelu" else "relu",
            n_positions=model.max_position_embeddings,
        )
    elif model_type == "bloom":
        out = dict(model_type="bloom", n_embed=model.hidden_size, n_layer=model.num_layers,
                   n_head=model.num_heads, seq_length=model.max_position_embeddings)
    else:
        out = dict(
            model_type=model_type, hidden_size=model.hidden_size, num_hidden_layers=model.num_layers,
            num_attention_heads=model.num_heads, intermediate_size=model.ffn_hidden_size,
            max_position_embeddings=model.max_position_embeddings,
        )
        if model_type == "gpt_neox":
            out.update(hidden_act=model.ffn_kind, attention_bias=model.linear_bias)
        else:
            out.update(hidden_act="silu", num_key_value_heads=model.kv_heads)
            if model.head_dim is not None:
                out["head_dim"] = model.head_dim
        if model_type == "llama":
            out.update(attention_bias=model.linear_bias, mlp_bias=model.linear_bias)
        if model_type == "mixtral":
            out.update(num_local_experts=model.num_experts, num_experts_per_tok=model.moe_top_k)
        if model.rope_theta is not None and model_type != "gpt_neox":
            out["rope_theta"] = model.rope_theta
    if not special:
        out.update(vocab_size=model.vocab_size, tie_word_embeddings=model.tied_embeddings)
    back = model_from_hf_config(out, source=model.source, default_name=model.name)
    if back != model:
        differ = sorted(k for k in ModelSpec.model_fields if getattr(back, k) != getattr(model, k))
        raise SpecError(f"cannot be written as a Hugging Face {model_type} config without changing: "
                        + ", ".join(differ), source=model.name)
    return out
