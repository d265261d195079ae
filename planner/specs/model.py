"""Model spec: a decoder-only transformer, dense or mixture-of-experts, with standard (GQA) or
multi-head latent attention (MLA, DeepSeek-V2, arXiv 2405.04434, Sec. 2.1)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import PrintableStr, Spec
from .bounds import MAX_EXPERTS, MAX_HEADS, MAX_LAYERS, MAX_SEQ, MAX_VOCAB, MAX_WIDTH


class ModelSpec(Spec):
    """A decoder-only transformer. Counts are plain integers; sizes are elements, not bytes."""

    name: PrintableStr = Field(description="model name")
    num_layers: int = Field(gt=0, le=MAX_LAYERS, description="transformer layers")
    hidden_size: int = Field(gt=0, le=MAX_WIDTH, description="model width h")
    num_heads: int = Field(gt=0, le=MAX_HEADS, description="attention (query) heads")
    num_kv_heads: int | None = Field(None, gt=0, le=MAX_HEADS, description="key/value heads (GQA/MQA); None = num_heads")
    head_dim: int | None = Field(None, gt=0, le=MAX_WIDTH, description="per-head width; None = hidden_size / num_heads")
    ffn_hidden_size: int = Field(gt=0, le=MAX_WIDTH, description="dense FFN inner width")
    ffn_kind: Literal["gelu", "swiglu", "geglu", "relu"] = Field(
        "gelu", description="FFN kind (swiglu and geglu are gated: 3 matrices; Shazeer 2020, arXiv 2002.05202)")
    norm_kind: Literal["layernorm", "rmsnorm"] = Field("layernorm", description="normalisation kind")
    vocab_size: int = Field(gt=0, le=MAX_VOCAB, description="vocabulary size (padded, as trained)")
    tied_embeddings: bool = Field(True, description="input embedding shared with the output projection")
    position_kind: Literal["learned", "rope", "alibi"] = Field("learned", description="position encoding")
    max_position_embeddings: int = Field(2048, gt=0, le=MAX_SEQ, description="positions of a learned position table")
    rope_theta: float | None = Field(
        None, gt=0, description="RoPE base (HF rope_theta); None = the frameworks' default 10000")
    linear_bias: bool = Field(True, description="every linear layer has a bias (GPT-2/Megatron style)")
    qkv_bias: bool = Field(False, description="only the QKV projection has a bias (Qwen2 style)")
    embedding_norm: bool = Field(False, description="a norm right after the embedding (BLOOM)")
    num_experts: int = Field(0, ge=0, le=MAX_EXPERTS, description="routed experts per MoE layer (0 = dense)")
    moe_top_k: int = Field(0, ge=0, le=MAX_EXPERTS, description="experts each token is routed to")
    expert_ffn_hidden_size: int | None = Field(None, gt=0, le=MAX_WIDTH, description="inner width of one expert")
    num_shared_experts: int = Field(0, ge=0, le=MAX_EXPERTS, description="always-active shared experts")
    shared_expert_ffn_hidden_size: int | None = Field(
        None, gt=0, description="inner width of one shared expert; None = expert_ffn_hidden_size (DeepSeek); "
        "Qwen2-MoE's shared_expert_intermediate_size")
    shared_expert_gate: bool = Field(False, description="a sigmoid gate h -> 1 scales the shared experts (Qwen2-MoE)")
    num_dense_layers: int = Field(
        0, ge=0, description="leading layers with a dense FFN of width ffn_hidden_size in a MoE model "
        "(DeepSeek first_k_dense_replace)")
    moe_router_score: Literal["softmax", "sigmoid"] = Field(
        "softmax", description="router score function (DeepSeek-V3: sigmoid; Mixtral, Qwen: softmax)")
    moe_router_bias: bool = Field(
        False, description="router has a per-expert bias (gpt-oss linear bias; DeepSeek-V3 score-correction bias)")
    moe_router_num_groups: int = Field(
        1, gt=0, description="expert groups for group-limited routing (DeepSeek n_group; 1 = none)")
    moe_router_group_topk: int | None = Field(
        None, gt=0, description="groups a token may use (DeepSeek topk_group; node-limited routing when groups = nodes)")
    attention_kind: Literal["gqa", "mla"] = Field(
        "gqa", description="gqa: Q/K/V projections (MHA/GQA/MQA); mla: multi-head latent attention")
    q_lora_rank: int | None = Field(None, gt=0, description="MLA query compression rank d_c' (None = no Q compression)")
    kv_lora_rank: int | None = Field(None, gt=0, description="MLA key/value compression rank d_c")
    qk_nope_head_dim: int | None = Field(None, gt=0, le=MAX_WIDTH, description="MLA per-head query/key width without RoPE")
    qk_rope_head_dim: int | None = Field(None, gt=0, le=MAX_WIDTH, description="MLA per-head decoupled RoPE query/key width")
    v_head_dim: int | None = Field(None, gt=0, le=MAX_WIDTH, description="MLA per-head value width")
    qk_norm: bool = Field(False, description="RMSNorm over each query and key head (Qwen3): 2 x head_dim weights")
    sandwich_norm: bool = Field(
        False, description="norms after attention and FFN as well as before (Gemma 2): 4 norms per layer")
    sliding_window: int | None = Field(
        None, gt=0, description="keys a query attends to in the sliding-window layers (gpt-oss 128, Gemma 2 4096)")
    sliding_window_layers: int = Field(
        0, ge=0, description="layers that attend in the sliding window (the others attend to the whole sequence)")
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
        if self.num_dense_layers and (not self.is_moe or self.num_dense_layers >= self.num_layers):
            raise ValueError(f"num_dense_layers({self.num_dense_layers}) needs a MoE model and < "
                             f"num_layers({self.num_layers})")
        if self.num_experts and self.num_experts % self.moe_router_num_groups:
            raise ValueError(f"num_experts({self.num_experts}) % moe_router_num_groups"
                             f"({self.moe_router_num_groups}) != 0")
        if self.moe_router_group_topk is not None and self.moe_router_group_topk > self.moe_router_num_groups:
            raise ValueError(f"moe_router_group_topk({self.moe_router_group_topk}) > moe_router_num_groups"
                             f"({self.moe_router_num_groups})")
        if self.sliding_window_layers > self.num_layers or bool(self.sliding_window) != bool(self.sliding_window_layers):
            raise ValueError(f"sliding_window({self.sliding_window}) needs 0 < sliding_window_layers"
                             f"({self.sliding_window_layers}) <= num_layers({self.num_layers}), and the reverse")
        if self.attention_kind == "mla":
            missing = [k for k in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
                       if getattr(self, k) is None]
            if missing:
                raise ValueError("attention_kind 'mla' needs " + ", ".join(missing))
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
    def attention_core_head_dim(self) -> float:
        """Per-head width of the attention core, d: the mean of the QK^T width and the PV width, so
        that the core's forward FLOPs are 4*b*heads*s^2*d (for MLA, 2*b*heads*s^2*(d_nope + d_rope + d_v))."""
        if self.sliding_window_layers > self.num_layers or bool(self.sliding_window) != bool(self.sliding_window_layers):
            raise ValueError(f"sliding_window({self.sliding_window}) needs 0 < sliding_window_layers"
                             f"({self.sliding_window_layers}) <= num_layers({self.num_layers}), and the reverse")
        if self.attention_kind == "mla":
            return (self.qk_nope_head_dim + self.qk_rope_head_dim + self.v_head_dim) / 2
        return self.head_size

    @property
    def gated_ffn(self) -> bool:
        """True for gated FFNs (swiglu, geglu): gate and up projections, 3 matrices."""
        return self.ffn_kind in ("swiglu", "geglu")

    @property
    def moe_layers(self) -> int:
        """Layers with routed experts (0 for a dense model)."""
        return self.num_layers - self.num_dense_layers if self.is_moe else 0

    @property
    def is_moe(self) -> bool:
        """True for a mixture-of-experts model."""
        return self.num_experts > 0
