"""What an op list costs on the compute stream, whatever its placement: the seconds of its compute ops and
ring-attention blocks, its kernel launches, and the communication ops left to price over their groups
(planner.pricing.pricer.Pricer prices those). Seconds on one rank."""

from __future__ import annotations

from dataclasses import dataclass

from ..work.context import RingAttention
from ..work.ops import Attention, ExecutedGemm, Gemm, HostSync, MemoryOp, Op, launches
from . import shared_blocks
from .compute import ComputePricer


def compute_seconds(compute: ComputePricer, op: Op) -> float | None:
    """Seconds of a compute op (GEMM, grouped GEMM, attention, memory-bound kernel) on one rank; None
    for a collective or a ring-attention core (whose sends need the cp group's placement)."""
    if isinstance(op, Gemm):
        return compute.gemm_time(op)
    if isinstance(op, ExecutedGemm):
        return compute.grouped_gemm_time(op.gemm)
    if isinstance(op, Attention):
        return compute.attention_time(op)
    if isinstance(op, MemoryOp):
        return compute.memory_time(op)
    return None


def single_stream_gemm(op: Op) -> bool:
    """Whether ``op`` is a GEMM the library launches alone on the compute stream (every ``Gemm``, and a grouped
    expert GEMM of one local expert). A grouped GEMM of several local experts is not: Transformer Engine's
    GroupedLinear runs one cuBLAS GEMM per expert on several streams (Megatron-LM docs/discussions/
    deepseek-v3-gb200-optimization Sec. 1, "multi-stream + cuBLAS"), so one GEMM's blocks fill the SMs another's
    tail leaves idle (planner.pricing.compute.overlap_slowdown)."""
    return isinstance(op, Gemm) or (isinstance(op, ExecutedGemm) and op.gemm.count == 1)


def ring_compute_parts(compute: ComputePricer, op: RingAttention) -> tuple[float, float, float]:
    """(one block, one correction, all compute) seconds of a ring-attention core on the compute
    stream: ``steps`` blocks and a correction after each transfer."""
    block = compute.attention_time(op.block)
    corr = compute.memory_time(op.correction) if op.steps > 1 else 0.0
    return block, corr, op.steps * block + op.transfers * corr


@dataclass(frozen=True, slots=True)
class ComputePart:
    """What an op list costs on the compute stream, whatever the placement: ``compute`` seconds of its
    compute ops and ring-attention blocks (summed in op order, as ``Pricer.block_time`` adds them),
    ``shared`` of those in shared experts, kernels launched outside and inside recompute, and the
    communication ops (collectives, ring cores) left to price over their groups, in order."""

    ops: tuple  # the op list (kept alive, so its id stays its own)
    compute: float
    shared: float
    kernels: int
    recompute_kernels: int
    comm_ops: tuple
    syncs: int = 0  # HostSync ops (planner.work.ops)
    gemm: float = 0.0  # seconds of single-stream GEMMs (``single_stream_gemm``) within ``compute``


def compute_part(compute: ComputePricer, ops: tuple) -> ComputePart:
    """``ComputePart`` of ``ops``; inside a search (planner.pricing.shared_blocks) kept per (op list,
    ComputePricer), since it reads no placement."""
    store = shared_blocks.current()
    memo = store.setdefault("compute_parts", {}) if store is not None else None
    if memo is not None:
        hit = memo.get((id(ops), id(compute)))
        if hit is not None and hit.ops is ops:
            return hit
    comp = shared = gemm = 0.0
    kernels = recompute_kernels = syncs = 0
    comm_ops = []
    for op in ops:
        syncs += isinstance(op, HostSync)
        if isinstance(op, RingAttention):
            comp += ring_compute_parts(compute, op)[2]
            kernels += 2 * op.steps - 1  # a block kernel per step, a softmax correction after all but the first
            comm_ops.append(op)
            continue
        n = launches(op)
        if op.phase == "recompute":
            recompute_kernels += n
        else:
            kernels += n
        t = compute_seconds(compute, op)
        if t is None:
            comm_ops.append(op)
        else:
            comp += t
            shared += t if op.name.startswith("shared.") else 0.0
            gemm += t if single_stream_gemm(op) else 0.0
    part = ComputePart(ops, comp, shared, kernels, recompute_kernels, tuple(comm_ops), syncs, gemm)
    if memo is not None:
        if len(memo) > shared_blocks.MAX_ENTRIES:
            memo.clear()
        memo[(id(ops), id(compute))] = part
    return part
