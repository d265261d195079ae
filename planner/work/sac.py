"""Per-op selective activation checkpointing as torchtitan runs it (``recompute='op'``).

torchtitan wraps each transformer block in ``checkpoint_wrapper`` with a policy over the ops the block
runs (torch.utils.checkpoint ``create_selective_checkpoint_contexts``; torchtitan 9dec370
torchtitan/parallelisms/parallelize_llama.py ``_apply_ac_to_transformer_block``, torchtitan 0.3.0
torchtitan/distributed/activation_checkpoint.py ``SelectiveAC``): the outputs of the ops of a save
list are kept for backward, every other op is replayed before the block's backward. The save list
holds the matmuls (``aten.mm``) but only every other one of them, counted in execution order within
the block (``mm_count % 2 == 0`` is recomputed), the fused attention kernels, the tensor-parallel
reduce-scatters and, depending on the release (the recipe's ``sac_saves_fp8_gemms`` /
``sac_saves_fp8_abs``), fp8 GEMMs (``aten._scaled_mm``) and the ``|x|`` of each fp8 scale. Norms,
RoPE, activations, casts, all-gathers and all-reduces are replayed. The MoE router is always
recomputed (``force_recompute_mm_shapes_by_fqns = ["moe.router.gate"]``) and not counted.

A layer's Linears are listed as the model runs them: Llama-style blocks (SwiGLU) call ``wq``, ``wk``,
``wv``, ``wo``, ``w1``, ``w3``, ``w2`` as separate Linears (torchtitan models/llama3/model.py), so
``wq``, ``wv``, ``w1``, ``w2`` are saved and ``wk``, ``wo``, ``w3`` recomputed; GPT-style blocks run one
fused QKV and one fc1. Eager SAC caches every saved op's output; under torch.compile the partitioner
drops the saved outputs the backward does not read (Ansel et al. 2024, PyTorch 2, Sec. 4: the min-cut
partitioner saves only what the backward consumes) and may override PREFER_RECOMPUTE ("Use MUST_* over
PREFER_* to indicate that the policy should not be overridden by other subsystems like torch.compile",
torch.utils.checkpoint.CheckpointPolicy): a compiled fp8 GEMM is then priced like the matmul it replaces
(every other one saved), which is what torchtitan's compiled float8 runs measure (the same peak memory as
their bf16 runs, benchmarks/llama3_h100_202412_torchtitan.md Tables 1 and 3). Bytes are per GPU for one
micro-batch.
"""

from __future__ import annotations

import dataclasses

from ..specs import ModelSpec, TrainingSpec
from .context import RingAttention
from .dims import Dims
from .kernels import ACT_BYTES
from .ops import Attention, Collective, ExecutedGemm, Gemm, MemoryOp, Op, TokenAllToAll

#: Linears of one forward GEMM op (layer.py fuses q/k/v and gate/up into one Gemm each), by op name, for
#: Llama-style blocks: (name suffix, share of the op's output width)
_SPLIT_SWIGLU = {"qkv": ("q", "k", "v"), "fc1": ("w1", "w3")}
#: GEMMs whose outputs the backward never reads (they only feed the block's residual adds)
_UNREAD_OUTPUTS = ("attn_proj", "fc2", "shared.fc2")


def _linears(op: Gemm, d: Dims, swiglu: bool) -> list[Gemm]:
    """The Linears a forward GEMM op stands for, in call order (q, k, v and gate, up separately for a
    Llama-style block)."""
    if not swiglu or op.name not in _SPLIT_SWIGLU:
        return [op]
    q, kv = d.heads_local * d.head_dim, d.kv_heads_local * d.head_dim
    widths = (q, kv, kv) if op.name == "qkv" else (op.n // 2, op.n // 2)
    return [Gemm(f"{op.name}.{part}", op.m, w, op.k, op.phase, op.count)
            for part, w in zip(_SPLIT_SWIGLU[op.name], widths)]


def _is_fp8(op: Gemm, training: TrainingSpec) -> bool:
    """Whether ``op`` runs as an fp8 GEMM (aten._scaled_mm): every Linear of a block under fp8 but the
    16-bit MoE router."""
    return training.precision == "fp8" and not op.name.startswith("router")


def sac_split(forward: list[Op], model: ModelSpec, training: TrainingSpec, d: Dims) -> tuple[float, list[Op]]:
    """(bytes of the outputs the policy saves, the ops replayed before the block's backward) for the
    forward op list ``forward`` of one layer (its ``phase`` is 'fwd'; the replayed ops are returned with
    phase 'recompute')."""
    recipe = training.recipe_spec
    compiled = recipe.inductor_fused
    swiglu = model.ffn_kind == "swiglu"
    saved = 0.0
    replay: list[Op] = []
    mm_count = 0
    for op in forward:
        if isinstance(op, Gemm):
            if op.name.startswith("router"):  # force-recomputed, not counted
                replay.append(_as_recompute(op))
                continue
            for lin in _linears(op, d, swiglu):
                # under torch.compile the partitioner keeps a saved output only where the backward reads it: not
                # the outputs of the block's last projections (attn_proj, fc2), which only feed a residual add
                out = 0.0 if compiled and op.name in _UNREAD_OUTPUTS else lin.m * lin.n * lin.count * ACT_BYTES
                if _is_fp8(lin, training) and not compiled:  # compiled: PREFER_RECOMPUTE is the partitioner's
                    if recipe.sac_saves_fp8_abs and not compiled:  # |x| of the input for its amax (bf16), cached
                        saved += lin.m * lin.k * lin.count * ACT_BYTES  # by eager SAC; compiled: unread, dropped
                    if recipe.sac_saves_fp8_gemms:
                        saved += out
                    else:
                        replay.append(_as_recompute(lin))
                    continue
                mm_count += 1
                if mm_count % 2:
                    saved += out
                else:
                    replay.append(_as_recompute(lin))
        elif isinstance(op, ExecutedGemm):  # grouped expert GEMMs (torch._grouped_mm): not in the save list
            replay.append(_as_recompute(op))
        elif isinstance(op, (Attention, RingAttention)) and _attention(op).fused:  # output + log-sum-exp
            a = _attention(op)
            saved += a.batch_heads * a.seq_q * a.head_dim * ACT_BYTES + a.batch_heads * a.seq_q * 4.0
        elif isinstance(op, TokenAllToAll) or (isinstance(op, Collective) and op.kind == "all-to-all"):
            replay.append(_as_recompute(op))
        elif isinstance(op, Collective) and op.kind == "reduce-scatter" and op.axis == "tp":
            saved += op.bytes / d.tp
        else:  # norms, RoPE, activations, casts, copies, all-gathers, all-reduces, unfused attention
            replay.append(_as_recompute(op))
    return saved, replay


def _attention(op) -> Attention:
    """The Attention op of a fused attention core (a ring core's block)."""
    return op.block if isinstance(op, RingAttention) else op


def _as_recompute(op: Op) -> Op:
    """``op`` replayed in the recompute phase."""
    if isinstance(op, ExecutedGemm):
        return dataclasses.replace(op, phase="recompute", gemm=dataclasses.replace(op.gemm, phase="recompute"))
    if isinstance(op, (Gemm, Attention, MemoryOp, Collective)):
        return dataclasses.replace(op, phase="recompute")
    return op
