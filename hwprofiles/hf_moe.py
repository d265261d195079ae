"""Hugging Face ``config.json`` readers for mixture-of-experts, MLA and Gemma models.

Key names and defaults follow the ``transformers`` configuration classes: Qwen2MoeConfig,
Qwen3MoeConfig, DeepseekV2Config / DeepseekV3Config (and DeepSeek's own configuration_deepseek.py),
GptOssConfig, GemmaConfig, Gemma2Config. Layouts the spec cannot express (MoE layers at a
frequency other than every layer after the dense prefix, ``mlp_only_layers``) are refused with
the key named. Not counted: gpt-oss's per-head attention-sink logits (64 per layer) and
DeepSeek-V3's multi-token-prediction module (``num_nextn_predict_layers``; the published 671B
excludes it).
"""

from __future__ import annotations

from typing import Any

from .hf_reader import _GELU, _llama_like, _Reader


def _every_layer_moe(r: _Reader) -> None:
    """Refuse configs whose MoE layers are not 'every layer after the dense prefix'."""
    if r.int("decoder_sparse_step", 1) != 1:
        raise r.error("decoder_sparse_step", "only 1 (every layer is MoE) is supported")
    if r.list("mlp_only_layers"):
        raise r.error("mlp_only_layers", "dense layers inside a MoE stack are not supported; allowed: []")
    if r.int("moe_layer_freq", 1) != 1:
        raise r.error("moe_layer_freq", "only 1 (every layer after first_k_dense_replace) is supported")


def _qwen_moe(r: _Reader) -> dict[str, Any]:
    """Qwen2-MoE (shared expert with a sigmoid gate, QKV bias) and Qwen3-MoE (per-head Q/K norm)."""
    fields = _llama_like(_Reader(r.data, r.source, "qwen2" if r.model_type == "qwen2_moe" else "qwen3"))
    _every_layer_moe(r)
    fields.update(num_experts=r.int("num_experts"), moe_top_k=r.int("num_experts_per_tok"),
                  expert_ffn_hidden_size=r.int("moe_intermediate_size"))
    shared = r.data.get("shared_expert_intermediate_size") or 0
    if r.model_type == "qwen2_moe" and shared:
        fields.update(num_shared_experts=1, shared_expert_ffn_hidden_size=r.int("shared_expert_intermediate_size"),
                      shared_expert_gate=True)
    return fields


def _deepseek(r: _Reader) -> dict[str, Any]:
    """DeepSeek-V2 / V3: MLA attention, fine-grained routed + shared experts, dense first layers,
    group-limited routing; V3 scores with a sigmoid plus a per-expert score-correction bias
    (auxiliary-loss-free balancing, arXiv 2412.19437 Sec. 2.1.2)."""
    fields = _llama_like(_Reader(r.data, r.source, "deepseek"))
    _every_layer_moe(r)
    experts = r.int("n_routed_experts", required=False)
    fields.update(
        num_kv_heads=None, head_dim=None, attention_kind="mla",
        q_lora_rank=r.int("q_lora_rank", required=False), kv_lora_rank=r.int("kv_lora_rank"),
        qk_nope_head_dim=r.int("qk_nope_head_dim"), qk_rope_head_dim=r.int("qk_rope_head_dim"),
        v_head_dim=r.int("v_head_dim"),
    )
    if experts:
        score = r.str("scoring_func", "softmax")
        if score not in ("softmax", "sigmoid"):
            raise r.error("scoring_func", f"unsupported {score!r}; allowed: softmax, sigmoid")
        fields.update(
            num_experts=experts, moe_top_k=r.int("num_experts_per_tok"),
            expert_ffn_hidden_size=r.int("moe_intermediate_size"),
            num_shared_experts=r.data.get("n_shared_experts") or 0,
            num_dense_layers=r.data.get("first_k_dense_replace") or 0,
            moe_router_score=score, moe_router_bias=r.str("topk_method", "greedy") == "noaux_tc",
            moe_router_num_groups=r.int("n_group", 1), moe_router_group_topk=r.int("topk_group", required=False),
        )
    return fields


def _gpt_oss(r: _Reader) -> dict[str, Any]:
    """gpt-oss: biases on every attention and expert projection, a router with a bias; the experts' gate is
    ``x * sigmoid(1.702 x)`` (transformers GptOssExperts ``alpha``; quick GELU, not SiLU): ffn_kind geglu."""
    fields = _llama_like(_Reader(r.data, r.source, "gpt_oss"))
    fields["ffn_kind"] = "geglu"
    k = r.int("num_experts_per_tok", required=False) or r.int("experts_per_token")
    fields.update(linear_bias=r.bool("attention_bias", True), num_experts=r.int("num_local_experts"),
                  moe_top_k=k, expert_ffn_hidden_size=fields["ffn_hidden_size"], moe_router_bias=True, **_sliding(r))
    return fields


def _sliding(r: _Reader) -> dict[str, Any]:
    """``sliding_window`` and how many layers use it: the ``layer_types`` list ("sliding_attention" entries)
    when given, else the transformers default of GptOssConfig / Gemma2Config, every other layer from the first
    (``"sliding_attention" if bool((i + 1) % 2)``)."""
    window = r.data.get("sliding_window")
    if not window:
        return {}
    types = r.list("layer_types")
    n = r.int("num_hidden_layers")
    layers = sum(t == "sliding_attention" for t in types) if types else (n + 1) // 2
    return {"sliding_window": int(window), "sliding_window_layers": layers} if layers else {}


def _gemma(r: _Reader) -> dict[str, Any]:
    """Gemma / Gemma 2: GeGLU FFN, RMSNorm, tied embeddings, head_dim independent of the width;
    Gemma 2 adds post-attention and post-FFN norms (Gemma Team 2024, arXiv 2408.00118, Sec. 2)."""
    act = r.data.get("hidden_activation") or r.str("hidden_act", "gelu_pytorch_tanh")
    if act not in _GELU:
        raise r.error("hidden_activation", f"unsupported activation {act!r}; allowed: " + ", ".join(sorted(_GELU)))
    heads = r.int("num_attention_heads")
    if r.bool("attention_bias", False):
        raise r.error("attention_bias", "attention_bias=true is not supported for gemma; allowed: false")
    return dict(
        num_layers=r.int("num_hidden_layers"), hidden_size=r.int("hidden_size"), num_heads=heads,
        num_kv_heads=r.int("num_key_value_heads", heads), head_dim=r.int("head_dim", required=False),
        ffn_hidden_size=r.int("intermediate_size"), ffn_kind="geglu", norm_kind="rmsnorm",
        vocab_size=r.int("vocab_size"), tied_embeddings=r.bool("tie_word_embeddings", True),
        position_kind="rope", max_position_embeddings=r.int("max_position_embeddings", 8192),
        linear_bias=False, sandwich_norm=r.model_type == "gemma2", **(_sliding(r) if r.model_type == "gemma2" else {}),
        rope_theta=r.number("rope_theta"),
    )


READERS = {"qwen2_moe": _qwen_moe, "qwen3_moe": _qwen_moe, "deepseek_v2": _deepseek, "deepseek_v3": _deepseek,
           "gpt_oss": _gpt_oss, "gemma": _gemma, "gemma2": _gemma}


def moe_to_hf(model) -> dict[str, Any] | None:
    """A config.json mapping for specs only these readers express (MLA, Qwen3-MoE Q/K norms, gpt-oss
    biases, Gemma), or None to leave the spec to ``hf_config.model_to_hf_config``'s own writers. The
    caller re-imports the result and refuses it when anything would change."""
    base = dict(hidden_size=model.hidden_size, num_hidden_layers=model.num_layers,
                num_attention_heads=model.num_heads, intermediate_size=model.ffn_hidden_size,
                max_position_embeddings=model.max_position_embeddings, vocab_size=model.vocab_size,
                tie_word_embeddings=model.tied_embeddings, hidden_act="silu",
                **({"rope_theta": model.rope_theta} if model.rope_theta is not None else {}))
    if model.attention_kind == "mla":
        out = dict(model_type="deepseek_v3", **base, num_key_value_heads=model.num_heads,
                   q_lora_rank=model.q_lora_rank, kv_lora_rank=model.kv_lora_rank,
                   qk_nope_head_dim=model.qk_nope_head_dim, qk_rope_head_dim=model.qk_rope_head_dim,
                   v_head_dim=model.v_head_dim)
        if model.is_moe:
            out.update(n_routed_experts=model.num_experts, num_experts_per_tok=model.moe_top_k,
                       moe_intermediate_size=model.expert_ffn_hidden_size or model.ffn_hidden_size,
                       n_shared_experts=model.num_shared_experts, first_k_dense_replace=model.num_dense_layers,
                       scoring_func=model.moe_router_score, topk_method="noaux_tc" if model.moe_router_bias else "greedy",
                       n_group=model.moe_router_num_groups, topk_group=model.moe_router_group_topk)
        return out
    kv = dict(num_key_value_heads=model.kv_heads, **({"head_dim": model.head_dim} if model.head_dim else {}))
    if model.sliding_window:  # layer_types: the windowed layers first in every pair, as the readers count them
        kv.update(sliding_window=model.sliding_window, layer_types=[
            "sliding_attention" if i < model.sliding_window_layers else "full_attention"
            for i in range(model.num_layers)])
    if model.is_moe and model.qk_norm:
        return dict(model_type="qwen3_moe", **base, **kv, num_experts=model.num_experts,
                    num_experts_per_tok=model.moe_top_k, moe_intermediate_size=model.expert_ffn_hidden_size)
    if model.is_moe and model.moe_router_bias:
        return dict(model_type="gpt_oss", **base, **kv, num_local_experts=model.num_experts,
                    num_experts_per_tok=model.moe_top_k, attention_bias=model.linear_bias)
    if model.ffn_kind == "geglu":
        return dict(model_type="gemma2" if model.sandwich_norm else "gemma", **base, **kv,
                    hidden_activation="gelu_pytorch_tanh")
    return None
