"""Context parallelism: the attention core of one rank when the sequence is split over ``cp`` ranks,
and the groups that reduce and shard states once cp > 1. FLOPs and bytes only (time is
``planner.pricing``).

The sequence of s tokens is cut into 2·cp chunks of s/(2·cp) and rank r holds chunks r and
2·cp-1-r, so every rank gets the same causal work (load balancing of Megatron-Core / Transformer
Engine and of Llama 3: Liu et al. 2023, Ring Attention, arXiv 2310.01889; Megatron-Core
context-parallel guide, docs/source/api-guide/context_parallel.rst; Dubey et al. 2024, The Llama 3
Herd of Models, arXiv 2407.21783, Sec. 3.3.2). Two kinds of exchange are priced:

- ``ring`` (Megatron-Core ``--cp-comm-type p2p``, Transformer Engine ``AttnFuncWithCPAndKVP2P``): cp
  steps per layer; in each the local queries (s/cp) meet one rank's K/V chunk (s/cp) — a block of
  (s/cp)² scores of which exactly half is unmasked under the 2·cp chunking (the diagonal step is
  causal, every other step keeps one of its two query or key chunks), so each step executes the
  FLOPs of a causal (s/cp)² block. While a block runs, the K/V chunk of the next step travels to the
  next rank of the ring (cp-1 transfers forward); backward sends K/V and the dK/dV partial sums
  (cp-1 transfers of both, and the last dK/dV hop home after the last block, not overlapped).
  Each step after the first rescales the running output with the online-softmax correction
  (Milakov & Gimelshein 2018, arXiv 1805.02867; TE ``flash_attn_fwd_out_correction``); backward
  accumulates dQ and dK/dV per step. Two chunks are in flight (the one in use, the one arriving).
- ``allgather`` (Llama 3 Sec. 3.3.2; torchtitan / ``torch.distributed.tensor.experimental.
  context_parallel`` default ``rotate_method="allgather"``; Megatron ``all_gather``): K and V are
  all-gathered over cp before the attention of the local queries against all s keys, and dK/dV
  reduce-scattered in backward; neither exchange is overlapped (NeMo Megatron-Bridge docs,
  "Hybrid / Hierarchical Context Parallel": all_gather has no async overlap).

Gradients are reduced, and ZeRO / FSDP / the distributed optimizer shard states, over the
dp × cp ranks that hold the same parameters (Megatron-Core ``get_data_parallel_group(
with_context_parallel=True)``; torchtitan's ``dp_shard_cp`` mesh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .ops import Attention, Collective, MemoryOp, Op, Phase

CpKind = Literal["ring", "allgather"]
CP_KINDS = ("ring", "allgather")
ACT_BYTES = 2  # 16-bit K, V, dK, dV and attention outputs
FP32 = 4

# Default exchange per recipe: Megatron-LM --cp-comm-type defaults to p2p (the ring); torchtitan /
# PyTorch context_parallel default to allgather (the FSDP2 and torch-amp recipes are PyTorch-native).
# DeepSpeed's own long-sequence method is Ulysses all-to-all (not priced); Megatron-DeepSpeed runs
# Megatron's ring, which is taken for the deepspeed recipe.
# The default per recipe is the recipe file's cp_kind_default (hwprofiles/recipes/*.yaml).


def resolve_cp_kind(layout, training) -> CpKind:
    """The layout's ``cp_kind``, or the recipe's default when it is not set."""
    kind = getattr(layout, "cp_kind", None)
    return kind if kind is not None else training.recipe_spec.cp_kind_default


def grad_group_size(layout) -> int:
    """Ranks that hold the same parameters and reduce their gradients together: dp × cp."""
    return layout.dp * layout.cp


def shard_group_size(layout) -> int:
    """Ranks over which ZeRO / FSDP / the distributed optimizer shard states: dp_shard × cp."""
    return layout.shard_degree * layout.cp


@dataclass(frozen=True, slots=True)
class RingAttention:
    """The ring-attention core of one layer on one rank for one micro-batch: ``steps`` (= cp) blocks
    ``block`` each, a ``correction`` after every block but the first, ``transfer_bytes`` sent to the
    next rank under each of the first steps-1 blocks, and ``tail_bytes`` sent after the last block
    (backward: the final dK/dV hop), not overlapped."""

    name: str
    block: Attention
    steps: int
    transfer_bytes: float
    tail_bytes: float
    correction: MemoryOp
    phase: Phase

    @property
    def flops(self) -> float:
        """Model FLOPs: ``steps`` full (s/cp)² blocks = the rank's share s/cp of the s² score matrix."""
        return self.steps * self.block.flops

    @property
    def executed_flops(self) -> float:
        """FLOPs the kernels perform: half of each block (causal work / cp per rank)."""
        return self.steps * self.block.executed_flops

    @property
    def transfers(self) -> int:
        """Sends overlapped with a block (steps - 1)."""
        return self.steps - 1

    @property
    def sent_bytes(self) -> float:
        """Bytes this rank sends for the op: (steps - 1) * transfer + tail."""
        return self.transfers * self.transfer_bytes + self.tail_bytes

    def backward(self) -> RingAttention:
        """The backward ring: block backward per step; K/V and dK/dV under each block, the last dK/dV
        hop after the last block; dQ and dK/dV accumulated per step."""
        b = self.block
        bwd_block = Attention(b.name + ".bwd", b.batch_heads, b.seq_q, b.seq_k, b.head_dim, "bwd_input",
                              b.causal, b.fused)
        kv = self.transfer_bytes
        return RingAttention(self.name + ".bwd", bwd_block, self.steps, 2 * kv, kv,
                             MemoryOp(self.correction.name + ".bwd", self._grad_accumulate_bytes(), "bwd_input"),
                             "bwd_input")

    def _grad_accumulate_bytes(self) -> float:
        """dQ += dQ_step and dKV += dKV_step, 16-bit: read both, write one (3 x 2 bytes an element)."""
        b = self.block
        q_elems = b.batch_heads * b.seq_q * b.head_dim
        kv_elems = self.transfer_bytes / ACT_BYTES  # K and V of the local chunk
        return 3 * ACT_BYTES * (q_elems + kv_elems)


Op_ = Op | RingAttention


def kv_chunk_bytes(batch: int, seq_local: int, kv_heads_local: int, head_dim: int) -> float:
    """K and V of one rank's s/cp tokens, 16-bit: b * (s/cp) * 2 * g_local * d * 2 bytes."""
    return float(batch * seq_local * 2 * kv_heads_local * head_dim * ACT_BYTES)


def correction_bytes(batch: int, heads_local: int, seq_local: int, head_dim: int) -> float:
    """Online-softmax correction of one ring step: read the step's 16-bit output, read and write the fp32
    accumulator (2 + 4 + 4 bytes per output element), and read the step LSE and read/write the running
    LSE, fp32 (3 x 4 bytes per query row)."""
    rows = batch * heads_local * seq_local
    return float(rows * head_dim * (ACT_BYTES + 2 * FP32) + rows * 3 * FP32)


def cp_merge_ops(*, batch: int, heads_local: int, head_dim: int, seq_local: int, cp: int, phase: Phase) -> list[Op_]:
    """PyTorch context parallelism's per-chunk merges (torch.distributed.tensor.experimental
    ``_templated_ring_attention``): one attention call per K/V chunk and, after each of the cp - 1 later ones,
    the merge of its partial output into the running one in fp32 (``_SDPAMerger._merge_one``: the cast of
    the block's output, out - sigmoid(lse_b - lse) * (out - out_b), the log-sum-exp update and, for the
    half-query steps, ``_partial_update``'s torch.cat): about 40 B per output element per step. Backward
    (``_templated_ring_attention_backward``): the fp32 accumulation of dQ and of the rotated dK / dV with
    their ``_partial_update`` copies and the torch.cat of dK and dV before each send: about 76 B per element."""
    if cp <= 1:
        return []
    elems = batch * heads_local * seq_local * head_dim
    return [MemoryOp("attention.cp_merge", 40.0 * elems * (cp - 1), phase, "copy", 6 * (cp - 1), 76.0 / 40.0, "copy")]


def attention_core(*, batch: int, heads_local: int, kv_heads_local: int, head_dim: int, seq_local: int,
                   cp: int, kind: CpKind, phase: Phase, fused: bool, merges: bool = False,
                   window: int | None = None, window_share: float = 0.0) -> list[Op_]:
    """Forward (or recompute) ops of the attention core of one layer on one rank.

    cp = 1: one causal Attention over the local sequence (``window_share`` of the layers it stands for
    attending in a sliding ``window``; with cp > 1 the window is not priced: full causal attention). Ring: a RingAttention of cp causal
    (s/cp)² blocks. All-gather: K/V all-gather over cp, then the local queries against all s keys
    (causal: with 2·cp chunks each rank executes half of its (s/cp)·s block); with ``merges`` (PyTorch's
    context_parallel) the partial outputs of its per-chunk attention calls merged (``cp_merge_ops``)."""
    bh = batch * heads_local
    if cp == 1:
        return [Attention("attention", bh, seq_local, seq_local, head_dim, phase, causal=True, fused=fused,
                          window=window if window_share else None, window_share=window_share if window else 0.0)]
    kv = kv_chunk_bytes(batch, seq_local, kv_heads_local, head_dim)
    if kind == "ring":
        block = Attention("attention", bh, seq_local, seq_local, head_dim, phase, causal=True, fused=fused)
        corr = MemoryOp("attention.softmax_correction", correction_bytes(batch, heads_local, seq_local, head_dim),
                        phase)
        return [RingAttention("attention", block, cp, kv, 0.0, corr, phase)]
    gathered = kv * cp
    merge = cp_merge_ops(batch=batch, heads_local=heads_local, head_dim=head_dim, seq_local=seq_local, cp=cp,
                         phase=phase) if merges else []
    return [Collective("attention.kv_allgather", "all-gather", "cp", gathered, phase),
            Attention("attention", bh, seq_local, seq_local * cp, head_dim, phase, causal=True, fused=fused), *merge]


def cp_working_bytes(*, batch: int, kv_heads_local: int, head_dim: int, seq_local: int, cp: int,
                     kind: CpKind) -> float:
    """Transient bytes of the context-parallel exchange of the layer being computed, per GPU.

    Ring: two chunks in flight (the one in use and the one arriving), of K/V + dK/dV in the backward
    (the larger pass): 2 * 2 * kv chunk. All-gather: the gathered K/V and, in backward, the gathered
    dK/dV before their reduce-scatter: 2 * cp * kv chunk."""
    if cp == 1:
        return 0.0
    kv = kv_chunk_bytes(batch, seq_local, kv_heads_local, head_dim)
    return 4.0 * kv if kind == "ring" else 2.0 * cp * kv


def cp_collective_calls(ops) -> dict[str, int]:
    """Context-parallel communication calls of an op list, by kind: ring sends ('send-recv': one per
    transfer and tail) and all-gathers / reduce-scatters over cp (for the validator's counts)."""
    out: dict[str, int] = {}
    for op in ops:
        if isinstance(op, RingAttention):
            out["send-recv"] = out.get("send-recv", 0) + op.transfers + (1 if op.tail_bytes else 0)
        elif isinstance(op, Collective) and op.axis == "cp":
            out[op.kind] = out.get(op.kind, 0) + op.calls
    return out
