"""Golden: bytes moved per token per layer by the memory-bound kernels, reproduced by hand.

Convention (planner/work/kernels.py, planner/pricing/kernel_fit.py): every tensor read and written
once. Shapes: T tokens, h hidden, f FFN width, tp 1, flash attention, no dropout, no recompute.
"""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware
from planner.cost import estimate
from planner.specs import Layout, ModelSpec, TrainingSpec

H, F, S = 1024, 4096, 2048


def test_eager_gpt_layer_under_torch_amp():
    """nanoGPT-style layer, torch.autocast: forward = weight casts 6 P (read fp32, write bf16) + fp32
    LayerNorm 8Th + its bf16 cast 6Th (twice) + attention-output .contiguous() 4Th + two residual adds
    (fp32 + bf16 -> fp32) 10Th + GeLU 4Tf; backward = grad casts 6 P + norm backward 12Th + cast 6Th
    (twice) + cat of dq/dk/dv and the output copy 16Th + residual grads (cast 6 + accumulate 12) 18Th
    (twice) + GeLU backward 6Tf + bias-grad reductions 2T(3h + h + f + h)."""
    model = ModelSpec(name="gpt", num_layers=2, hidden_size=H, num_heads=16, ffn_hidden_size=F, vocab_size=50304,
                      tied_embeddings=False)
    tr = TrainingSpec(seq_length=S, global_batch_size=8, micro_batch_size=8, recipe="torch-amp")
    T = 8 * S
    p_layer = 12 * H * H + 9 * H  # qkv, proj, fc1, fc2 weights and biases
    fwd = 6 * p_layer + (8 + 6 + 4 + 10 + 8 + 6 + 10) * T * H + 4 * T * F
    bwd = 6 * p_layer + (12 + 6 + 16 + 18 + 12 + 6 + 18) * T * H + 6 * T * F + 2 * T * (3 * H + H + F + H)
    est = estimate(model, load_hardware("h200-sxm-141gb"), tr, Layout(), breakdown=True)
    assert est.ops.layer_bytes_per_token == pytest.approx((fwd + bwd) / T, rel=1e-12)
    assert est.ops.layer_bytes_per_token == pytest.approx(211974.75, rel=1e-9)


def test_megatron_core_llama_layer():
    """Megatron-Core (TE) Llama layer: fused RMSNorm 4Th (backward 6Th) twice, fused RoPE on q and k
    2 x 2 x 2Th (backward 1.5x), fused residual adds 6Th (backward 12Th) twice, fused SwiGLU 6Tf
    (backward 10Tf); no autocast casts, no head-layout copies, bias gradients none (no biases)."""
    h, f = 4096, 11008
    model = ModelSpec(name="llama", num_layers=2, hidden_size=h, num_heads=32, ffn_hidden_size=f, vocab_size=32000,
                      ffn_kind="swiglu", norm_kind="rmsnorm", position_kind="rope", linear_bias=False,
                      tied_embeddings=False)
    tr = TrainingSpec(seq_length=4096, global_batch_size=1, micro_batch_size=1, recipe="megatron-core", dropout=False)
    per_token = (4 + 8 + 6 + 4 + 6) * h + 6 * f + (6 + 12 + 12 + 6 + 12) * h + 10 * f  # = 76h + 16f
    est = estimate(model, load_hardware("h100-sxm-80gb"), tr, Layout(), breakdown=True)
    assert est.ops.layer_bytes_per_token == pytest.approx(per_token, rel=1e-12)
    assert per_token == 76 * h + 16 * f
    kinds = {c.kind for c in est.ops.classes}
    assert "cast" not in kinds and "copy" not in kinds  # TE: no autocast casts, no layout copies
