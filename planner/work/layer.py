"""Ops of one transformer layer, the embedding and the output head, for one micro-batch on one
tensor-parallel rank (Megatron-LM sharding: Shoeybi et al. 2019, arXiv 1909.08053; sequence
parallelism: Korthikanti et al. 2022, arXiv 2205.05198, Sec. 4.2.2).

Shapes: T = micro_batch * seq tokens, h hidden, a heads, g kv heads, d head dim, f FFN width,
V vocab, t tensor-parallel degree. Activations move as 16-bit (2 bytes) values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..specs import Layout, ModelSpec, TrainingSpec
from .mla import mla_forward
from .moe import moe_forward
from .ops import Attention, Collective, ExecutedGemm, Gemm, MemoryOp, Op

ACT_BYTES = 2  # bf16/fp16 activations (fp8 recipes keep 16-bit activations between GEMMs)


@dataclass(frozen=True, slots=True)
class Dims:
    """Per-rank dimensions of one micro-batch."""

    tokens: int  # T = b * s
    batch: int
    seq: int
    hidden: int
    heads_local: int
    kv_heads_local: int
    head_dim: int
    ffn_local: int
    ffn_gate_factor: int  # 2 for swiglu (gate + up), 1 otherwise
    vocab_local: int
    tp: int
    sequence_parallel: bool

    @property
    def norm_tokens(self) -> int:
        """Tokens each rank normalises: T/t with sequence parallelism, else T (redundant)."""
        return self.tokens // self.tp if self.sequence_parallel else self.tokens


def dims(model: ModelSpec, training: TrainingSpec, layout: Layout) -> Dims:
    """Per-rank dimensions for ``model`` under ``layout`` (context parallel splits the sequence)."""
    t = layout.tp
    seq = training.seq_length // layout.cp
    b = training.micro_batch_size
    return Dims(
        tokens=b * seq,
        batch=b,
        seq=seq,
        hidden=model.hidden_size,
        heads_local=model.num_heads // t,
        kv_heads_local=max(1, model.kv_heads // t),
        head_dim=model.head_size,
        ffn_local=model.ffn_hidden_size // t,
        ffn_gate_factor=2 if model.gated_ffn else 1,
        vocab_local=-(-model.vocab_size // t),
        tp=t,
        sequence_parallel=layout.sequence_parallel,
    )


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


def layer_forward(model: ModelSpec, training: TrainingSpec, layout: Layout, phase: str = "fwd",
                  dense: bool = False) -> list[Op]:
    """Forward ops of one layer for one micro-batch on one TP rank (``phase='recompute'`` for replay;
    ``dense``: one of a MoE model's leading dense-FFN layers). MLA attention: planner.work.mla;
    MoE FFN: planner.work.moe."""
    d = dims(model, training, layout)
    T, h, tn = d.tokens, d.hidden, d.norm_tokens
    q_width = d.heads_local * d.head_dim
    kv_width = d.kv_heads_local * d.head_dim
    drop = 1 if training.dropout else 0
    ops: list[Op] = [MemoryOp("norm1", tn * h * ACT_BYTES * 2, phase)]
    ops += _tp_in(d, "attn", phase)
    if model.attention_kind == "mla":
        ops += mla_forward(model, training, d, phase)
    else:
        ops.append(Gemm("qkv", T, q_width + 2 * kv_width, h, phase))
        ops.append(
            Attention("attention", d.batch * d.heads_local, d.seq, d.seq, d.head_dim, phase,
                      causal=True, fused=training.flash_attention)
        )
        if not training.flash_attention:
            # score softmax read+write, dropout read+write+mask: 2*2 + (2*2+1)*drop bytes per score element
            scores = d.batch * d.heads_local * d.seq * d.seq
            ops.append(MemoryOp("softmax", scores * (4 + 5 * drop), phase))
        ops.append(Gemm("attn_proj", T, h, q_width, phase))
    ops += _tp_out(d, "attn", phase)
    ops.append(MemoryOp("dropout_add1", tn * h * (3 * ACT_BYTES + drop), phase))
    ops.append(MemoryOp("norm2", tn * h * ACT_BYTES * 2, phase))
    if model.is_moe and not dense:
        ops += moe_forward(model, training, layout, phase, _tp_in(d, "mlp", phase), _tp_out(d, "mlp", phase))
    else:
        ops += _tp_in(d, "mlp", phase)
        ops.append(Gemm("fc1", T, d.ffn_local * d.ffn_gate_factor, h, phase))
        act_io = (d.ffn_gate_factor + 1) * ACT_BYTES  # read input(s), write output
        ops.append(MemoryOp("activation", T * d.ffn_local * act_io, phase))
        ops.append(Gemm("fc2", T, h, d.ffn_local, phase))
        ops += _tp_out(d, "mlp", phase)
    ops.append(MemoryOp("dropout_add2", tn * h * (3 * ACT_BYTES + drop), phase))
    return ops


def backward_of(forward: list[Op]) -> list[Op]:
    """Backward ops of a forward op list: each GEMM gives an input-grad and a weight-grad GEMM
    of equal FLOPs; attention gives its backward; memory ops move twice the bytes; TP collectives
    mirror (all-reduce stays all-reduce; with SP all-gather <-> reduce-scatter)."""
    out: list[Op] = []
    for op in reversed(forward):
        if isinstance(op, Gemm):
            out.append(Gemm(op.name + ".dgrad", op.m, op.k, op.n, "bwd_input", op.count))
            out.append(Gemm(op.name + ".wgrad", op.k, op.n, op.m, "bwd_weight", op.count))
        elif isinstance(op, ExecutedGemm):
            g = op.gemm
            out.append(ExecutedGemm(op.name + ".dgrad", Gemm(g.name + ".dgrad", g.m, g.k, g.n, "bwd_input", g.count),
                                    op.model_flops, "bwd_input"))
            out.append(ExecutedGemm(op.name + ".wgrad", Gemm(g.name + ".wgrad", g.k, g.n, g.m, "bwd_weight", g.count),
                                    op.model_flops, "bwd_weight"))
        elif isinstance(op, Attention):
            out.append(Attention(op.name + ".bwd", op.batch_heads, op.seq_q, op.seq_k, op.head_dim,
                                 "bwd_input", op.causal, op.fused))
        elif isinstance(op, MemoryOp):
            out.append(MemoryOp(op.name + ".bwd", op.bytes_moved * 2, "bwd_input"))
        elif isinstance(op, Collective):
            mirror = {"all-gather": "reduce-scatter", "reduce-scatter": "all-gather"}.get(op.kind, op.kind)
            out.append(dataclasses.replace(op, name=op.name + ".bwd", kind=mirror, phase="bwd_input", calls=1))
    return out


def layer_recompute(model: ModelSpec, training: TrainingSpec, layout: Layout, dense: bool = False) -> list[Op]:
    """Ops replayed before a layer's backward: the whole forward for full recompute; the
    attention core for selective recompute without a fused kernel (Korthikanti et al. 2022,
    Sec. 5); nothing otherwise (a fused kernel already recomputes scores in its backward)."""
    if training.recompute == "full":
        return layer_forward(model, training, layout, phase="recompute", dense=dense)
    if training.recompute == "selective" and not training.flash_attention:
        return [op for op in layer_forward(model, training, layout, phase="recompute", dense=dense)
                if op.name in ("attention", "softmax")]
    return []


def embedding_forward(model: ModelSpec, training: TrainingSpec, layout: Layout) -> list[Op]:
    """Vocab-parallel embedding lookup (+ learned positions) and its TP reduction, first stage."""
    d = dims(model, training, layout)
    T, h = d.tokens, d.hidden
    extra = 2 if model.position_kind == "learned" else 0
    ops: list[Op] = [MemoryOp("embedding", T * h * ACT_BYTES * (1 + extra), "fwd")]
    ops += _tp_out(d, "embedding", "fwd")
    if model.embedding_norm:
        ops.append(MemoryOp("embedding_norm", d.norm_tokens * h * ACT_BYTES * 2, "fwd"))
    return ops


def head_forward(model: ModelSpec, training: TrainingSpec, layout: Layout) -> list[Op]:
    """Final norm, vocab-parallel logits GEMM and cross-entropy (fp32 softmax), last stage."""
    d = dims(model, training, layout)
    T, h = d.tokens, d.hidden
    ops: list[Op] = [MemoryOp("final_norm", d.norm_tokens * h * ACT_BYTES * 2, "fwd")]
    ops += _tp_in(d, "head", "fwd")
    ops.append(Gemm("logits", T, d.vocab_local, h, "fwd"))
    # cross-entropy: read 16-bit logits, write/read fp32 softmax: 2 + 4 + 4 bytes per logit
    ops.append(MemoryOp("cross_entropy", T * d.vocab_local * 10, "fwd"))
    if d.tp > 1:  # max, sum-exp and target logit per token, fp32 (Megatron vocab-parallel CE)
        ops.append(Collective("cross_entropy.allreduce", "all-reduce", "tp", T * 3 * 4, "fwd"))
    return ops
