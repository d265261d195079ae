"""Ops and activation bytes of multi-head latent attention (MLA; DeepSeek-V2, arXiv 2405.04434,
Sec. 2.1, Eqs. 9-19; DeepSeek-V3, arXiv 2412.19437, Sec. 2.1.1), one micro-batch, one TP rank.

Q: down-projection h -> d_c' with an RMSNorm, up-projection to H(d_nope + d_rope) (or one h ->
H(d_nope + d_rope) projection without Q compression). KV: one h -> d_c + d_rope projection (the
latent and the shared RoPE key) with an RMSNorm over d_c, up-projection d_c -> H(d_nope + d_v).
The core attends with QK^T width d_nope + d_rope and PV width d_v; the output projection is
H d_v -> h. Heads split over t ranks (Megatron-Core MLA); the down-projections are executed in
full on every TP rank (Megatron-Core builds them "duplicated"), so their model FLOPs are the
rank's 1/t share. 16-bit activations.
"""

from __future__ import annotations

from ..specs import ModelSpec, TrainingSpec
from .context import attention_core
from .ops import ExecutedGemm, Gemm, MemoryOp, Op

ACT_BYTES = 2


def _replicated(name: str, m: int, n: int, k: int, t: int, phase: str) -> ExecutedGemm:
    gemm = Gemm(name, m, n, k, phase)
    return ExecutedGemm(name, gemm, gemm.flops / t, phase)


def mla_forward(model: ModelSpec, training: TrainingSpec, d, phase: str, cp: int = 1,
                cp_kind: str = "ring") -> list[Op]:
    """Attention ops between the input norm and the output projection's TP reduction (``d``: the
    layer's Dims; ``cp``/``cp_kind``: the context-parallel degree and K/V exchange)."""
    T, h, t = d.tokens, d.hidden, d.tp
    H = d.heads_local
    qk = model.qk_nope_head_dim + model.qk_rope_head_dim
    ops: list[Op] = []
    if model.q_lora_rank:
        r = model.q_lora_rank
        ops.append(_replicated("q_down", T, r, h, t, phase))
        ops.append(MemoryOp("q_norm", T * r * ACT_BYTES * 2, phase))
        ops.append(Gemm("q_up", T, H * qk, r, phase))
    else:
        ops.append(Gemm("q_proj", T, H * qk, h, phase))
    c = model.kv_lora_rank
    ops.append(_replicated("kv_down", T, c + model.qk_rope_head_dim, h, t, phase))
    ops.append(MemoryOp("kv_norm", T * c * ACT_BYTES * 2, phase))
    ops.append(Gemm("kv_up", T, H * (model.qk_nope_head_dim + model.v_head_dim), c, phase))
    core = model.attention_core_head_dim  # (d_qk + d_v) / 2: the core's FLOPs are 2 b H s^2 (d_qk + d_v)
    core = int(core) if core == int(core) else core
    # context parallelism (planner.work.context): K and V of H heads at widths d_qk and d_v are
    # exchanged as 2 H of the mean width ``core``, the same bytes
    ops += attention_core(batch=d.batch, heads_local=H, kv_heads_local=H, head_dim=core, seq_local=d.seq,
                          cp=cp, kind=cp_kind, phase=phase, fused=training.flash_attention)
    if not training.flash_attention:
        scores = d.batch * H * d.seq * d.seq
        drop = 1 if training.dropout else 0
        ops.append(MemoryOp("softmax", scores * (4 + 5 * drop), phase))
    ops.append(Gemm("attn_proj", T, h, H * model.v_head_dim, phase))
    return ops


def mla_activation_bytes(model: ModelSpec, d) -> float:
    """Attention activations MLA keeps for backward (excluding the input norm, counted by the
    caller): the latents (inputs of the up-projections and their norms), Q, K, V, and the
    attention output (input of the output projection)."""
    T, H = d.tokens, d.heads_local
    qk = model.qk_nope_head_dim + model.qk_rope_head_dim
    latents = (model.q_lora_rank or 0) * 2 + model.kv_lora_rank * 2 + model.qk_rope_head_dim
    return T * ACT_BYTES * (latents + H * (2 * qk + 2 * model.v_head_dim))
