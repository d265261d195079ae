"""What the Hugging Face ``config.json`` readers share (hwprofiles.hf_config for the dense model types,
hwprofiles.hf_moe for the MoE, MLA and Gemma ones): typed access to a config mapping with errors naming the
key and the file, and the Llama-like fields most model types start from."""

from __future__ import annotations

import math
from typing import Any

from planner.errors import SpecError

_GELU = {"gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_python", "gelu_accurate", "quick_gelu"}
_SILU = {"silu", "swish"}


class _Reader:
    """Typed access to one config mapping, with errors that name the key and the file."""

    def __init__(self, data: dict[str, Any], source: str, model_type: str):
        self.data, self.source, self.model_type = data, source, model_type

    def error(self, key: str, message: str) -> SpecError:
        return SpecError(message, field=key, source=self.source)

    def int(self, key: str, default: int | None = None, *, required: bool = True) -> int | None:
        value = self.data.get(key)
        if value is None:
            if default is not None or not required:
                return default
            raise self.error(key, f"required key missing for model_type {self.model_type}")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(key, f"expected a positive integer, got {value!r}")
        return value

    def bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def number(self, key: str) -> float | None:
        """A positive finite number (an int or a float; None when absent or null)."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise self.error(key, f"expected a positive number, got {value!r}")
        return float(value)

    def list(self, key: str) -> list:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {value!r}")
        return value

    def str(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        return value


def _llama_like(r: _Reader) -> dict[str, Any]:
    act = r.str("hidden_act", "silu")
    if act not in _SILU:
        raise r.error("hidden_act", f"unsupported activation {act!r} for model_type {r.model_type}; allowed: silu")
    heads = r.int("num_attention_heads")
    fields: dict[str, Any] = dict(
        num_layers=r.int("num_hidden_layers"), hidden_size=r.int("hidden_size"), num_heads=heads,
        num_kv_heads=r.int("num_key_value_heads", heads), head_dim=r.int("head_dim", required=False),
        ffn_hidden_size=r.int("intermediate_size"), ffn_kind="swiglu", norm_kind="rmsnorm",
        vocab_size=r.int("vocab_size"), tied_embeddings=r.bool("tie_word_embeddings", False),
        position_kind="rope", max_position_embeddings=r.int("max_position_embeddings", 2048),
        linear_bias=False, qkv_bias=r.model_type == "qwen2",
        rope_theta=r.number("rope_theta"),
    )
    if r.model_type == "qwen3":  # per-head Q/K RMSNorm; attention_bias puts biases on q, k, v, o
        fields.update(qk_norm=True, linear_bias=False)
        if r.bool("attention_bias", False):
            raise r.error("attention_bias", "attention_bias=true is not supported for qwen3; allowed: false")
    if r.model_type == "llama":
        attention_bias, mlp_bias = r.bool("attention_bias", False), r.bool("mlp_bias", False)
        if attention_bias != mlp_bias:
            raise r.error("attention_bias", f"attention_bias={attention_bias} with mlp_bias={mlp_bias} is not "
                          "supported; allowed: both true or both false")
        fields["linear_bias"] = attention_bias
    if r.model_type == "mixtral":
        fields.update(num_experts=r.int("num_local_experts"), moe_top_k=r.int("num_experts_per_tok"),
                      expert_ffn_hidden_size=fields["ffn_hidden_size"])
    return fields
