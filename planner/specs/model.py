"""Model spec: a decoder-only transformer (dense, with MoE fields stored for later pricing)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Spec


class ModelSpec(Spec):
    """A decoder-only transformer. Counts are plain integers; sizes are elements, not bytes."""

    name: str = Field(description="model name")
    num_layers: int = Field(gt=0, description="transformer layers")
    hidden_size: int = Field(gt=0, description="model width h")
    num_heads: int = Field(gt=0, description="attention (query) heads")
    num_kv_heads: int | None = Field(None, gt=0, description="key/value heads (GQA/MQA); None = num_heads")
    head_dim: int | None = Field(None, gt=0, description="per-head width; None = hidden_size / num_heads")
    ffn_hidden_size: int = Field(gt=0, description="dense FFN inner width")
    ffn_kind: Literal["gelu", "swiglu", "relu"] = Field("gelu", description="FFN kind (swiglu has 3 matrices)")
    norm_kind: Literal["layernorm", "rmsnorm"] = Field("layernorm", description="normalisation kind")
    vocab_size: int = Field(gt=0, description="vocabulary size (padded, as trained)")
    tied_embeddings: bool = Field(True, description="input embedding shared with the output projection")
    position_kind: Literal["learned", "rope", "alibi"] = Field("learned", description="position encoding")
    max_position_embeddings: int = Field(2048, gt=0, description="positions of a learned position table")
    rope_theta: float | None = Field(
        None, gt=0, description="RoPE base (HF rope_theta); None = the frameworks' default 10000")
    linear_bias: bool = Field(True, description="every linear layer has a bias (GPT-2/Megatron style)")
    qkv_bias: bool = Field(False, description="only the QKV projection has a bias (Qwen2 style)")
    embedding_norm: bool = Field(False, description="a norm right after the embedding (BLOOM)")
    num_experts: int = Field(0, ge=0, description="routed experts per MoE layer (0 = dense)")
    moe_top_k: int = Field(0, ge=0, description="experts each token is routed to")
    expert_ffn_hidden_size: int | None = Field(None, gt=0, description="inner width of one expert")
    num_shared_experts: int = Field(0, ge=0, description="always-active shared experts")
    source: str = Field("", description="citation for the architecture numbers")

    @model_validator(mode="after")
    def _check(self):
        kv = self.kv_heads
        if self.num_heads % kv:
            raise ValueError(f"num_heads({self.num_heads}) % num_kv_heads({kv}) = {self.num_heads % kv} != 0")
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size({self.hidden_size}) % num_heads({self.num_heads}) != 0 and no head_dim given"
            )
        if self.num_experts and not self.moe_top_k:
            raise ValueError(f"num_experts({self.num_experts}) > 0 needs moe_top_k >= 1")
        if self.moe_top_k > self.num_experts:
            raise ValueError(f"moe_top_k({self.moe_top_k}) > num_experts({self.num_experts})")
        return self

    @property
    def kv_heads(self) -> int:
        """Key/value heads (== num_heads for multi-head attention)."""
        return self.num_kv_heads or self.num_heads

    @property
    def head_size(self) -> int:
        """Per-head width."""
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def is_moe(self) -> bool:
        """True for a mixture-of-experts model."""
        return self.num_experts > 0
