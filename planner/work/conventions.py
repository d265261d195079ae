"""Published FLOPs accounting conventions, for comparing paraplan with published throughput numbers.

"TFLOP/s per GPU" is not defined the same way everywhere: some papers count the recomputed
forward pass (hardware FLOPs), some do not (model FLOPs), some drop the attention or logit terms.
Each function below is one paper's formula, verbatim, as a pure function (FLOPs are floating-point
operations, a multiply-add = 2). The FLOPs of the operations a step actually executes live in the
other ``planner.work`` modules; these are only for reading published numbers the way they were
written. Symbols: B sequences per iteration, s sequence length, L layers, h hidden size,
V (padded) vocabulary, N parameters.
"""

from __future__ import annotations

from ..specs import ModelSpec
from .params import parameter_counts


def megatron_eq3_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int,
                       recompute_factor: int = 4) -> float:
    """FLOPs per iteration of Narayanan et al. 2021 (SC21, arXiv 2104.04473) Eq. 3.

    ``24·f·B·s·L·h²·(1 + s/6h + V/16Lh)``; with ``f = 4`` (full activation recomputation, the
    paper's setting) this is Eq. 3's ``96·B·s·L·h²·(…)``. ``f = 3`` without recomputation is the
    variant of the Megatron-DeepSpeed ``throughput_calculator`` (megatron/utils.py) that the
    Frontier authors (Dash et al. 2023, arXiv 2312.12705) report "TFLOPs" with.
    """
    s, L, h = seq, layers, hidden
    return 24.0 * recompute_factor * batch * s * L * h**2 * (1 + s / (6 * h) + vocab / (16 * L * h))


def korthikanti_model_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int) -> float:
    """Model FLOPs per iteration, Korthikanti et al. 2022 (arXiv 2205.05198) Eq. 7 (no recompute).

    ``72·B·L·s·h²·(1 + s/6h + V/12hL)``: the numerator of the paper's MFU.
    """
    s, L, h = seq, layers, hidden
    return 72.0 * batch * L * s * h**2 * (1 + s / (6 * h) + vocab / (12 * h * L))


def korthikanti_selective_recompute_flops(batch: int, seq: int, layers: int, hidden: int, vocab: int) -> float:
    """Hardware FLOPs per iteration with selective recomputation, Korthikanti et al. 2022 Eq. 8.

    ``72·B·L·s·h²·(1 + s/3h + V/12hL)``: the attention core (s/6h) is computed twice.
    """
    s, L, h = seq, layers, hidden
    return 72.0 * batch * L * s * h**2 * (1 + s / (3 * h) + vocab / (12 * h * L))


def palm_model_flops_per_token(params: int, layers: int, hidden: int, seq: int) -> float:
    """Model FLOPs per token of Chowdhery et al. 2022 (PaLM, arXiv 2204.02311) App. B: ``6N + 12·L·h·s``.

    ``6N`` counts the forward and backward matmuls over the ``N`` parameters; ``12·L·h·s`` the
    attention scores and weighted sum (``h`` = heads × head size). No recomputation is counted.
    Also the convention of the Llama 3 paper's MFU.
    """
    return 6.0 * params + 12.0 * layers * hidden * seq


def mosaicml_model_flops_per_sequence(params: int, layers: int, d_model: int, seq: int) -> float:
    """MosaicML llm-foundry MFU numerator per sequence: ``3·(2·N·s) + 3·(L·2·2·d·s²)``.

    From llm-foundry's benchmarking README / callbacks (``flops_per_seq = 2·N·s``,
    ``attn_flops_per_seq = n_layers·2·2·d_model·s²``, forward + backward = 3×).
    """
    return 3.0 * (2.0 * params * seq) + 3.0 * (layers * 2.0 * 2.0 * d_model * seq**2)


def mosaicml_hardware_flops_per_sequence(params: int, layers: int, d_model: int, seq: int) -> float:
    """MosaicML HFU numerator per sequence with activation checkpointing: 4× instead of 3× (one recompute forward)."""
    return mosaicml_model_flops_per_sequence(params, layers, d_model, seq) * 4.0 / 3.0


def bigscience_flops(params: int, tokens: int) -> float:
    """BigScience (BLOOM) logging convention: ``8·N·tokens`` (recompute counted, no attention term).

    Le Scao et al. 2022 (BLOOM, arXiv 2211.05100) training logs; 8 = 2 (forward) + 4 (backward)
    + 2 (recomputed forward) FLOPs per parameter per token.
    """
    return 8.0 * params * tokens


def gpt_neox_flops(params: int, layers: int, hidden: int, seq: int, tokens: int) -> float:
    """GPT-NeoX logging convention: ``(6·N + 60·s·h·L)·tokens`` FLOPs (no recompute factor).

    EleutherAI gpt-neox ``megatron/logging.py`` ``get_flops`` from da0a017b (2021-05-06) until 5f364017
    (2023-09-27): ``ff = model.total_params * 6``, ``attn = seq_length * hidden_size * num_layers * 60``, times
    the tokens of the step; ``total_params`` sums the parameters over the model-parallel group (both embeddings of
    an untied model). The GPT-NeoX-20B paper (Black et al. 2022, arXiv 2204.06745) reports this figure.
    """
    return (6.0 * params + 60.0 * seq * hidden * layers) * tokens


def flops_utilization(flops: float, seconds: float, num_gpus: int, peak_tflops: float) -> float:
    """Fraction of peak: ``flops / (seconds · num_gpus · peak_tflops·1e12)`` (MFU or HFU, per the FLOPs given)."""
    return flops / (seconds * num_gpus * peak_tflops * 1e12)


def training_flops_per_token(model: ModelSpec, seq_length: int, *, full_recompute: bool = False) -> float:
    """PaLM-style training FLOPs per token of ``model`` at ``seq_length`` (Chowdhery et al. 2022 App. B).

    ``N`` is the matmul parameters a token uses: the non-embedding parameters (active experts only
    for MoE) plus the ``h x V`` logit projection, which is a matmul whether tied or not (the token
    and position lookups are not). The attention term uses the query width ``H·d``. With
    ``full_recompute`` one extra forward pass is counted (×8/6, the hardware-FLOPs convention of
    Narayanan et al. 2021 and MosaicML HFU).
    """
    counts = parameter_counts(model)
    matmul_params = counts.active_non_embedding + model.hidden_size * model.vocab_size
    attention_width = model.num_heads * model.attention_core_head_dim  # MLA: mean of QK and V widths
    flops = palm_model_flops_per_token(matmul_params, model.num_layers, attention_width, seq_length)
    return flops * 8.0 / 6.0 if full_recompute else flops


def megatron_core_model_flops(batch: int, seq: int, layers: int, hidden: int, heads: int, kv_heads: int,
                              head_dim: int, ffn_hidden: int, vocab: int, *, swiglu: bool = False,
                              experts_per_token: int = 1) -> float:
    """Model FLOPs per iteration of Megatron-Core's ``num_floating_point_operations``
    (megatron/training/training.py, Megatron-LM r0.8.0), the numerator of its reported MFU and of
    NeMo's "Model TFLOP/sec/GPU" for dense GPT/Llama models (GQA, SwiGLU and top-k MoE aware).

    ``12·B·s·L·h²·[(1 + g/a + s/h)·(a·d/h) + (f/h)·k·(3/2 if SwiGLU) + V/(2·L·h)]`` with ``a`` query
    heads, ``g`` key/value groups, ``d`` head size, ``f`` FFN width, ``k`` experts per token. For
    multi-head attention, ``f = 4h`` and no SwiGLU it equals Korthikanti et al. 2022 Eq. 7.
    """
    s, L, h = seq, layers, hidden
    attention = (1 + kv_heads / heads + s / h) * (heads * head_dim / h)
    mlp = ffn_hidden / h * experts_per_token * (1.5 if swiglu else 1.0)
    logits = vocab / (2 * L * h)
    return 12.0 * batch * s * L * h**2 * (attention + mlp + logits)


def megatron_bridge_padded_vocab(vocab: int, tp: int, divisible_by: int = 128) -> int:
    """Vocabulary Megatron-Bridge counts: ``ceil(V / (128·tp))·128·tp`` (megatron/bridge/utils/vocab_utils.py
    ``calculate_padded_vocab_size``, Megatron-Bridge v0.3.0; ``make_vocab_size_divisible_by`` 128 by default)."""
    multiple = divisible_by * tp
    return -(-vocab // multiple) * multiple


def megatron_bridge_flops(model: ModelSpec, batch: int, seq: int, tp: int = 1, mtp_layers: int = 0) -> float:
    """Model FLOPs per iteration of Megatron-Bridge's ``num_floating_point_operations`` (the numerator of
    its performance tables' "Model TFLOP / sec / GPU"): megatron/bridge/training/utils/flop_utils.py,
    ``transformer_flops``, Megatron-Bridge v0.3.0 (the 26.02 NeMo container), lines 176-345.

    Per token, with the fwd + wgrad + dgrad factor 3 and 2 FLOPs per multiply-add (``12 = 3·2·2`` for the
    two-GEMM blocks), ``L' = L + mtp_layers`` layers (the MTP modules count as layers of the last kind):

    - MLP: ``12·L'·h·[f·m·(L_dense/L') + f_e·k·m·(L_moe/L') + f_s·m·(L_moe/L')]`` with ``m = 3/2`` only for a
      gated FFN whose activation is SiLU (SwiGLU; gpt-oss's quick-GELU gate counts ``m = 1``), ``f_e`` the
      expert width, ``k`` routed experts per token, ``f_s`` the shared experts' total width;
    - GQA attention: ``12·L'·h²·(1 + g/a + s/(2h))·(a·d/h)`` (causal: half the score matrix);
    - MLA attention: ``6·L'·[r_q·(h + a·(d_n + d_r) + 1) + r_kv·(h + a·(d_n + d_v) + 1) + h·d_r + a·d_v·h
      + s·a·(d_n + d_r)/2 + s·a·d_v/2]``;
    - MTP norms and projection ``6·mtp·(3h + 2h²)``; logits ``6·h·V_pad·(mtp + 1)``.

    No sliding window is counted by this release (a later one does; see README). FLOPs per iteration of
    ``batch`` sequences of ``seq`` tokens."""
    h, a = model.hidden_size, model.num_heads
    layers = model.num_layers + mtp_layers
    moe_layers = model.moe_layers + (mtp_layers if model.is_moe else 0)
    dense_layers = layers - moe_layers
    m = 1.5 if model.ffn_kind == "swiglu" else 1.0
    expert = (model.expert_ffn_hidden_size or model.ffn_hidden_size) if model.is_moe else 0
    shared = model.num_shared_experts * (model.shared_expert_ffn_hidden_size or expert)
    mlp = 12.0 * layers * h * (model.ffn_hidden_size * m * dense_layers / layers
                               + expert * model.moe_top_k * m * moe_layers / layers + shared * m * moe_layers / layers)
    if model.attention_kind == "mla":
        dn, dr, dv = model.qk_nope_head_dim, model.qk_rope_head_dim, model.v_head_dim
        q = model.q_lora_rank * (h + a * (dn + dr) + 1) if model.q_lora_rank else h * a * (dn + dr)
        kv = model.kv_lora_rank * (h + a * (dn + dv) + 1) + h * dr
        attention = 6.0 * layers * (q + kv + a * dv * h + seq * a * (dn + dr) / 2 + seq * a * dv / 2)
    else:
        d = model.head_size
        attention = 12.0 * layers * h * h * (1 + model.kv_heads / a + seq / h / 2) * (a * d / h)
    mtp = 6.0 * mtp_layers * (3 * h + 2 * h * h)
    logits = 6.0 * h * megatron_bridge_padded_vocab(model.vocab_size, tp) * (mtp_layers + 1)
    return batch * seq * (mlp + attention + mtp + logits)
