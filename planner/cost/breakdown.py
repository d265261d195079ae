"""Per-kernel-class breakdown of one step on one GPU: bytes moved, FLOPs and seconds per class
(gemm, attention, each memory-bound kernel class, each collective kind), folded from the same ops and
prices as the estimate (no formula of its own). Also the bytes moved per token per layer."""

from __future__ import annotations

from pydantic import Field

from ..pricing import Pricer
from ..work.ops import Attention, Collective, Gemm, MemoryOp, kernel_class, launches
from ..work.step import StageWork, StepWork
from .result import Result


class KernelClassCost(Result):
    """One kernel class over one step on one GPU."""

    kind: str = Field(description="gemm, attention, a memory kernel class (norm_fwd, cast, ...) or comm:<collective>")
    kernels: int = Field(description="kernel launches (collective calls) per step")
    bytes: float = Field(description="bytes moved through HBM per step (memory-bound kernels; 0 for GEMMs), bytes")
    flops: float = Field(description="executed FLOPs per step")
    seconds: float = Field(description="device seconds per step, serialised (before any overlap), s")


class OpBreakdown(Result):
    """Where one GPU's step goes, by kernel class (the stage with the largest compute)."""

    stage: int = Field(description="pipeline stage described")
    classes: list[KernelClassCost] = Field(description="per kernel class, largest seconds first")
    layer_bytes_per_token: float = Field(
        description="bytes moved by the memory-bound kernels of one transformer layer (forward + backward + "
        "recompute) per token of the micro-batch, bytes")
    host_seconds: float = Field(description="CPU dispatch time of every kernel of the step, s")


def _flops(op) -> float:
    if isinstance(op, Attention):
        return op.executed_flops
    return op.flops


def layer_bytes_per_token(stage: StageWork, tokens: int) -> float:
    """Bytes the memory-bound kernels of one layer move per token (forward, backward, recompute)."""
    ly = stage.layer
    total = sum(op.bytes_moved for ops in (ly.forward, ly.backward_input, ly.backward_weight, ly.recompute)
                for op in ops if isinstance(op, MemoryOp))
    return total / tokens


def op_breakdown(step: StepWork, pricer: Pricer) -> OpBreakdown:
    """Per-class bytes, FLOPs and seconds of the busiest stage's step (micro-batches x blocks)."""
    m = step.micro_batches
    best = None
    for s in step.stages:
        acc: dict[str, list[float]] = {}
        host = 0.0
        for block, n in s.blocks:
            if n == 0:
                continue
            for ops in (block.forward, block.backward_input, block.backward_weight, block.recompute):
                for op in ops:
                    k = kernel_class(op)
                    a = acc.setdefault(k, [0, 0.0, 0.0, 0.0])
                    a[0] += launches(op) * n * m
                    a[1] += (op.bytes_moved if isinstance(op, MemoryOp) else 0.0) * n * m
                    a[2] += _flops(op) * n * m
                    a[3] += pricer.op_time(op) * n * m
                    calls = pricer.recompute_host_calls if op.phase == "recompute" else 1
                    host += launches(op) * calls * n * m * pricer.host_dispatch_s
        for c in s.per_microbatch_comm:
            a = acc.setdefault(kernel_class(c), [0, 0.0, 0.0, 0.0])
            a[0] += c.calls * m
            a[3] += pricer.collective_time(c) * m
        for c in s.per_step_comm:
            a = acc.setdefault(kernel_class(c), [0, 0.0, 0.0, 0.0])
            a[0] += c.calls
            a[3] += pricer.collective_time(c)
        a = acc.setdefault("optimizer", [0, 0.0, 0.0, 0.0])
        a[0] += 1
        a[3] += pricer.optimizer_time(s.optimizer_params)
        compute = sum(v[3] for k, v in acc.items() if not k.startswith("comm:"))
        if best is None or compute > best[0]:
            best = (compute, s, acc, host)
    _, s, acc, host = best
    classes = sorted((KernelClassCost(kind=k, kernels=int(v[0]), bytes=v[1], flops=v[2], seconds=v[3])
                      for k, v in acc.items()), key=lambda c: -c.seconds)
    tokens = step.training.micro_batch_size * step.training.seq_length // step.layout.cp
    return OpBreakdown(stage=s.index, classes=classes, layer_bytes_per_token=layer_bytes_per_token(s, tokens),
                       host_seconds=host)


__all__ = ["Collective", "Gemm", "KernelClassCost", "OpBreakdown", "layer_bytes_per_token", "op_breakdown"]
