"""Ops of one transformer layer, the embedding and the output head, for one micro-batch on one
tensor-parallel rank (Megatron-LM sharding: Shoeybi et al. 2019, arXiv 1909.08053; sequence
parallelism: Korthikanti et al. 2022, arXiv 2205.05198, Sec. 4.2.2).

Shapes: T = micro_batch * seq tokens, h hidden, a heads, g kv heads, d head dim, f FFN width,
V vocab, t tensor-parallel degree. Activations move as 16-bit (2 bytes) values.
"""

from __future__ import annotations

import dataclasses

from ..specs import Layout, ModelSpec, TrainingSpec
from .context import RingAttention, attention_core, resolve_cp_kind
from .dims import Dims, dims
from .kernels import (
    activation_ops,
    attention_copy_ops,
    bias_grad_ops,
    fp8_quantize_ops,
    loss_ops,
    norm_ops,
    repeat_kv_ops,
    residual_bytes,
    residual_ops,
    rope_ops,
    weight_cast_ops,
)
from .mla import mla_forward
from .moe import moe_forward, moe_linear_params
from .ops import Attention, Collective, CountExchange, ExecutedGemm, Gemm, MemoryOp, Op, TokenAllToAll
from .params import attention_parameters, mlp_parameters
from .sac import sac_split

ACT_BYTES = 2  # bf16/fp16 activations (fp8 recipes keep 16-bit activations between GEMMs)


def _tp_in(d: Dims, name: str, phase: str) -> list[Op]:
    """Entering a column-parallel block: all-gather of the sequence shards with SP, else nothing."""
    if d.tp == 1 or not d.sequence_parallel:
        return []
    return [Collective(f"{name}.allgather", "all-gather", "tp", d.tokens * d.hidden * ACT_BYTES, phase)]


def _tp_out(d: Dims, name: str, phase: str) -> list[Op]:
    """Leaving a row-parallel block: reduce-scatter with SP, else all-reduce (Megatron's g)."""
    if d.tp == 1:
        return []
    kind = "reduce-scatter" if d.sequence_parallel else "all-reduce"
    return [Collective(f"{name}.{kind}", kind, "tp", d.tokens * d.hidden * ACT_BYTES, phase)]


def _attention_core_ops(d: Dims, training: TrainingSpec, layout: Layout, recipe, position_kind: str,
                        phase: str, window: int | None = None, window_share: float = 0.0) -> list[Op]:
    """Between the QKV GEMM and the output projection: RoPE, the attention core (fused flash kernel,
    or QK^T / softmax / PV with the score softmax and dropout as memory ops) and the eager head-layout
    copies. The one place the attention core op is built."""
    q_width = d.heads_local * d.head_dim
    kv_width = d.kv_heads_local * d.head_dim
    ops: list[Op] = []
    if position_kind == "rope":
        ops += rope_ops(d.tokens, q_width, kv_width, recipe, phase)
    ops += repeat_kv_ops(d.tokens, q_width, kv_width, recipe, phase)
    kv_heads = d.heads_local if recipe.gqa_repeat_kv else d.kv_heads_local  # the kernel (and cp) sees repeated K/V
    ops += attention_core(batch=d.batch, heads_local=d.heads_local, kv_heads_local=kv_heads,
                          head_dim=d.head_dim, seq_local=d.seq, cp=layout.cp, kind=resolve_cp_kind(layout, training),
                          phase=phase, fused=training.flash_attention,  # context parallelism: work/context.py
                          merges=recipe.cp_merges, window=window, window_share=window_share)
    if not training.flash_attention:
        # score softmax read+write, dropout read+write+mask: 2*2 + (2*2+1)*drop bytes per score element
        drop = 1 if training.dropout else 0
        scores = d.batch * d.heads_local * d.seq * d.seq
        ops.append(MemoryOp("softmax", scores * (4 + 5 * drop), phase, "fused" if recipe.softmax_fused else "softmax"))
    ops += attention_copy_ops(d.tokens, q_width, kv_width, recipe, phase)
    return ops


def _ffn_ops(d: Dims, recipe, phase: str) -> list[Op]:
    """fc1 (gate + up for SwiGLU), the activation, fc2: the one place the FFN ops are built."""
    T, h = d.tokens, d.hidden
    ops: list[Op] = [Gemm("fc1", T, d.ffn_local * d.ffn_gate_factor, h, phase)]
    ops += activation_ops(T, d.ffn_local, d.ffn_gate_factor == 2, recipe, phase)
    ops.append(Gemm("fc2", T, h, d.ffn_local, phase))
    return ops


def layer_linear_params(model: ModelSpec, layout: Layout, dense: bool = False) -> tuple[float, int]:
    """(Linear weight + bias parameters of one layer on one TP rank, number of such tensors). GPT-style
    models (GeLU) have one fused QKV Linear (Megatron, nanoGPT); Llama-style (SwiGLU) separate q, k, v
    (Hugging Face, torchtitan). A MoE layer (not ``dense``): its FFN part is the router, the rank's
    E/ep routed experts and the shared experts (planner.work.moe.moe_linear_params)."""
    t = layout.tp
    swiglu = model.ffn_kind == "swiglu"
    n_mats = (4 if swiglu else 2) + (3 if swiglu else 2)
    biases = n_mats if model.linear_bias else (3 if model.qkv_bias else 0)
    if model.is_moe and not dense:
        ffn, ffn_tensors = moe_linear_params(model, layout)
        attn_mats = 4 if swiglu else 2
        attn_biases = attn_mats if model.linear_bias else (3 if model.qkv_bias else 0)
        return attention_parameters(model) / t + ffn, attn_mats + attn_biases + ffn_tensors
    return (attention_parameters(model) + mlp_parameters(model, model.ffn_hidden_size)) / t, n_mats + biases


def _bias_widths(model: ModelSpec, d: Dims, moe_ffn: bool = False) -> list[int]:
    """Output widths of the Linears that carry a bias (per TP rank); a MoE FFN's (``moe_ffn``) expert
    biases are not listed (their gradients are not itemised as separate reductions)."""
    q_kv = d.heads_local * d.head_dim + 2 * d.kv_heads_local * d.head_dim
    if model.linear_bias:
        return [q_kv, d.hidden] if moe_ffn else [q_kv, d.hidden, d.ffn_local * d.ffn_gate_factor, d.hidden]
    return [q_kv] if model.qkv_bias else []


def layer_forward(model: ModelSpec, training: TrainingSpec, layout: Layout, phase: str = "fwd",
                  dense: bool = False) -> list[Op]:
    """Forward ops of one layer for one micro-batch on one TP rank (``phase='recompute'`` for replay;
    ``dense``: one of a MoE model's leading dense-FFN layers): the recipe's weight casts, norm, QKV,
    attention core, projection, residual, norm, FFN, residual. MLA attention: planner.work.mla;
    MoE FFN: planner.work.moe."""
    d = dims(model, training, layout)
    recipe = training.recipe_spec
    T, h, tn = d.tokens, d.hidden, d.norm_tokens
    q_width = d.heads_local * d.head_dim
    kv_width = d.kv_heads_local * d.head_dim
    linear_params, tensors = layer_linear_params(model, layout, dense)
    ops: list[Op] = list(weight_cast_ops(linear_params, tensors, recipe, phase))
    ops += norm_ops("norm1", tn, h, model, recipe, phase)
    ops += _tp_in(d, "attn", phase)
    if model.attention_kind == "mla":
        ops += mla_forward(model, training, d, phase, layout.cp, resolve_cp_kind(layout, training))
    else:
        ops.append(Gemm("qkv", T, q_width + 2 * kv_width, h, phase))
        if model.qk_norm:  # per-head RMSNorm of the queries and keys before RoPE (Qwen3, arXiv 2505.09388 Sec. 2)
            ops += norm_ops("q_norm", T, q_width, model, recipe, phase) + norm_ops("k_norm", T, kv_width, model,
                                                                                  recipe, phase)
        # sliding-window layers (gpt-oss, Gemma 2): the layer template stands for the average layer
        ops += _attention_core_ops(d, training, layout, recipe, model.position_kind, phase, model.sliding_window,
                                   model.sliding_window_layers / model.num_layers)
        ops.append(Gemm("attn_proj", T, h, q_width, phase))
    ops += _tp_out(d, "attn", phase)
    ops += residual_ops("dropout_add1", tn, h, recipe, training.dropout, phase)
    ops += norm_ops("norm2", tn, h, model, recipe, phase)
    if model.is_moe and not dense:
        ops += moe_forward(model, training, layout, phase, _tp_in(d, "mlp", phase), _tp_out(d, "mlp", phase))
    else:
        ops += _tp_in(d, "mlp", phase)
        ops += _ffn_ops(d, recipe, phase)
        ops += _tp_out(d, "mlp", phase)
    ops += residual_ops("dropout_add2", tn, h, recipe, training.dropout, phase)
    if training.precision == "fp8":
        # the MoE router stays a 16-bit torch Linear in Megatron-Core (TopKRouter), not a TE fp8 one
        ops += fp8_quantize_ops([_executed_shape(op) for op in ops if isinstance(op, (Gemm, ExecutedGemm))
                                 and op.name != "router"], phase, recipe,
                                weights_in_fp8=training.fp8_all_gather)
    return ops


def _executed_shape(op: Gemm | ExecutedGemm) -> Gemm:
    """The GEMM as executed, its ``count`` folded into the rows (a grouped expert GEMM casts the inputs
    of all its local experts)."""
    g = op.gemm if isinstance(op, ExecutedGemm) else op
    return g if g.count == 1 else Gemm(g.name, g.m * g.count, g.n, g.k, g.phase)


def layer_backward_extras(model: ModelSpec, training: TrainingSpec, layout: Layout, dense: bool = False) -> list[Op]:
    """Backward-only kernels of one layer: the bias-gradient reductions."""
    d = dims(model, training, layout)
    return list(bias_grad_ops(d.tokens, _bias_widths(model, d, model.is_moe and not dense), training.recipe_spec))


def backward_of(forward: list[Op]) -> list[Op]:
    """Backward ops of a forward op list: each GEMM gives an input-grad and a weight-grad GEMM
    of equal FLOPs; attention gives its backward; memory ops move twice the bytes; TP collectives
    mirror (all-reduce stays all-reduce; with SP all-gather <-> reduce-scatter)."""
    out: list[Op] = []
    for op in reversed(forward):
        if isinstance(op, Gemm):
            out.append(Gemm(op.name + ".dgrad", op.m, op.k, op.n, "bwd_input", op.count))
            out.append(Gemm(op.name + ".wgrad", op.k, op.n, op.m, "bwd_weight", op.count))
        elif isinstance(op, RingAttention):
            out.append(op.backward())
        elif isinstance(op, ExecutedGemm):
            g = op.gemm
            out.append(ExecutedGemm(op.name + ".dgrad", Gemm(g.name + ".dgrad", g.m, g.k, g.n, "bwd_input", g.count),
                                    op.model_flops, "bwd_input"))
            out.append(ExecutedGemm(op.name + ".wgrad", Gemm(g.name + ".wgrad", g.k, g.n, g.m, "bwd_weight", g.count),
                                    op.model_flops, "bwd_weight"))
        elif isinstance(op, Attention):
            out.append(dataclasses.replace(op, name=op.name + ".bwd", phase="bwd_input"))
        elif isinstance(op, MemoryOp):
            if op.bwd_factor > 0:
                out.append(MemoryOp(op.name + ".bwd", op.bytes_moved * op.bwd_factor, "bwd_input",
                                    op.bwd_kind or op.kind, op.launches, 0.0))
        elif isinstance(op, TokenAllToAll):  # the backward of a dispatch is a combine and vice versa
            out.append(dataclasses.replace(op, name=op.name + ".bwd", phase="bwd_input", calls=1,
                                           combine=not op.combine))
        elif isinstance(op, Collective) and not isinstance(op, CountExchange):
            mirror = {"all-gather": "reduce-scatter", "reduce-scatter": "all-gather"}.get(op.kind, op.kind)
            out.append(dataclasses.replace(op, name=op.name + ".bwd", kind=mirror, phase="bwd_input", calls=1))
    return out


def layer_recompute(model: ModelSpec, training: TrainingSpec, layout: Layout, dense: bool = False) -> list[Op]:
    """Ops replayed before a layer's backward: the whole forward for full recompute; what torchtitan's
    per-op policy does not save for ``op`` (planner.work.sac); the attention core for selective
    recompute without a fused kernel (Korthikanti et al. 2022, Sec. 5); nothing otherwise (a fused
    kernel already recomputes scores in its backward)."""
    if training.recompute == "full":
        return layer_forward(model, training, layout, phase="recompute", dense=dense)
    if training.recompute == "op":
        return sac_split(layer_forward(model, training, layout, dense=dense), model, training,
                         dims(model, training, layout))[1]
    if training.recompute == "selective" and not training.flash_attention:
        return [op for op in layer_forward(model, training, layout, phase="recompute", dense=dense)
                if op.name in ("attention", "attention.kv_allgather", "softmax")]
    return []


def embedding_forward(model: ModelSpec, training: TrainingSpec, layout: Layout) -> list[Op]:
    """Vocab-parallel embedding lookup (+ learned positions and their add) and its TP reduction,
    first stage. Elements are fp32 under autocast (fp32 tables, embedding is not an autocast op).
    Backward: the dense embedding gradient (zero the local table's grad, scatter-add the tokens)."""
    d = dims(model, training, layout)
    recipe = training.recipe_spec
    T, h = d.tokens, d.hidden
    e = residual_bytes(recipe)
    extra = 2 if model.position_kind == "learned" else 0
    table = d.vocab_local * h * e
    fwd = T * h * e * (1 + extra)
    ops: list[Op] = [MemoryOp("embedding", fwd, "fwd", "embedding", 1 + (extra > 0) * 2,
                              (table + T * h * e * (2 + extra)) / fwd, "embedding")]
    ops += _tp_out(d, "embedding", "fwd")
    if model.embedding_norm:
        ops += norm_ops("embedding_norm", d.norm_tokens, h, model, recipe, "fwd")
    return ops


def head_forward(model: ModelSpec, training: TrainingSpec, layout: Layout) -> list[Op]:
    """Final norm, vocab-parallel logits GEMM (with the autocast cast of its weight) and the
    recipe's cross-entropy path, last stage."""
    d = dims(model, training, layout)
    recipe = training.recipe_spec
    T, h = d.tokens, d.hidden
    ops: list[Op] = list(weight_cast_ops(d.vocab_local * h, 1, recipe, "fwd"))
    ops += norm_ops("final_norm", d.norm_tokens, h, model, recipe, "fwd")
    ops += _tp_in(d, "head", "fwd")
    ops.append(Gemm("logits", T, d.vocab_local, h, "fwd"))
    ops += loss_ops(T, d.vocab_local, recipe)
    if d.tp > 1:  # max, sum-exp and target logit per token, fp32 (Megatron vocab-parallel CE)
        ops.append(Collective("cross_entropy.allreduce", "all-reduce", "tp", T * 3 * 4, "fwd"))
    return ops
