"""Per-kernel-class breakdown of one step on one GPU: bytes moved, FLOPs and seconds per class
(gemm, attention, each memory-bound kernel class, each collective kind), folded from the same ops and
prices as the estimate (no formula of its own). Also the bytes moved per token per layer."""

from __future__ import annotations

from ..pricing import Pricer
from ..work.context import RingAttention
from ..work.ops import Attention, Collective, Gemm, MemoryOp, kernel_class, launches
from ..work.step import StageWork, StepWork
from .result import KernelClassCost, OpBreakdown


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


def _ring_into(acc: dict, op: RingAttention, times: int, pricer: Pricer) -> float:
    """Book a ring-attention core (planner/work/context.py) as its kernels: ``steps`` attention blocks,
    ``steps - 1`` softmax corrections, and the exposed part of its cp sends; returns its host seconds."""
    block = pricer.compute.attention_time(op.block)
    corr = pricer.compute.memory_time(op.correction) if op.steps > 1 else 0.0
    a = acc.setdefault("attention", [0, 0.0, 0.0, 0.0])
    a[0] += op.steps * times
    a[2] += _flops(op.block) * op.steps * times
    a[3] += block * op.steps * times
    c = acc.setdefault(kernel_class(op.correction), [0, 0.0, 0.0, 0.0])
    c[0] += op.transfers * times
    c[1] += op.correction.bytes_moved * op.transfers * times
    c[3] += corr * op.transfers * times
    e = acc.setdefault("comm:cp-ring", [0, 0.0, 0.0, 0.0])
    e[0] += (op.transfers + (1 if op.tail_bytes else 0)) * times
    e[3] += pricer.ring_attention_time(op)[1] * times
    calls = pricer.recompute_host_calls if op.phase == "recompute" else 1
    return (2 * op.steps - 1) * calls * times * pricer.host_dispatch_s


def op_breakdown(step: StepWork, pricer: Pricer) -> OpBreakdown:
    """Per-class bytes, FLOPs and seconds of the busiest stage's step (micro-batches x blocks)."""
    m = step.micro_batches
    best = None
    seen = set()
    for s in step.stages:
        key = (s.layers, id(s.pre), id(s.post))
        if key in seen:  # stages built from one template do the same work
            continue
        seen.add(key)
        acc: dict[str, list[float]] = {}
        host = 0.0
        for block, n in s.blocks:
            if n == 0:
                continue
            for ops in (block.forward, block.backward_input, block.backward_weight, block.recompute):
                for op in ops:
                    if isinstance(op, RingAttention):
                        host += _ring_into(acc, op, n * m, pricer)
                        continue
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
        for c in s.per_step_comm + s.optimizer_comm:  # the optimizer's own collectives under their class
            a = acc.setdefault(kernel_class(c), [0, 0.0, 0.0, 0.0])
            a[0] += c.calls
            a[3] += pricer.collective_time(c)
        a = acc.setdefault("optimizer", [0, 0.0, 0.0, 0.0])
        a[0] += 1
        a[1] += s.optimizer_pass_bytes  # the fused Adam kernel's own traffic is in its measured rate
        a[3] += pricer.optimizer_time(s.optimizer_params, s.optimizer_pass_bytes, s.optimizer_tensors)
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
