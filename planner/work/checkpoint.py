"""Bytes of a training checkpoint: what is saved, what each rank holds of it, what each node writes.

A checkpoint that can resume training holds the model states the optimizer step needs: the
16-bit (or fp32) weights, the fp32 master copy and the optimizer moments (Adam's m and v), the
same per-parameter bytes as the memory model (``planner.work.memory.state_bytes_per_param``).
Gradients are not saved (they are rebuilt by the next step). Sizes, in bytes:

- ``total_bytes`` = parameters * (weight + master + moment bytes): the unique state. Both
  distributed checkpoint writers save each tensor once however the layout replicates it:
  PyTorch DCP deduplicates replicated tensors across ranks before writing (``dedup_save_plans``,
  torch/distributed/checkpoint/_dedup_save_plans.py) and Megatron-Core's distributed checkpoint
  spreads the replicas' writes over the data-parallel ranks (``FullyParallelSaveStrategyWrapper``,
  megatron/core/dist_checkpointing/strategies/fully_parallel.py);
- ``held_bytes_per_rank`` = the largest pipeline stage's weights + optimizer states per GPU after
  ZeRO/FSDP sharding (the stage records of ``planner.work.step_bytes``): what an asynchronous
  checkpoint first copies from HBM to host memory on each rank;
- ``written_bytes_per_node`` = total / nodes: the balanced share each node writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..specs import Layout, ModelSpec, TrainingSpec
from .memory import state_bytes_per_param
from .params import parameter_counts
from .step_bytes import step_bytes


@dataclass(frozen=True)
class CheckpointBytes:
    """Sizes of one checkpoint of a layout (module docstring), bytes."""

    parameters: int
    bytes_per_param: float  # weights + master + moments
    total_bytes: float
    held_bytes_per_rank: float
    written_bytes_per_node: float
    nodes: int


def checkpoint_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout, gpus: int,
                     devices_per_node: int) -> CheckpointBytes:
    """The checkpoint of ``model`` trained with ``training`` on ``layout`` over ``gpus`` ranks."""
    params = parameter_counts(model).total
    per = state_bytes_per_param(training)
    per_param = per.weights + per.optimizer
    total = params * per_param
    stages = step_bytes(model, training, layout).stages
    held = max(s.weights_bytes + s.optimizer_bytes for s in stages)
    nodes = max(1, math.ceil(gpus / devices_per_node))
    return CheckpointBytes(parameters=params, bytes_per_param=per_param, total_bytes=total,
                           held_bytes_per_rank=held, written_bytes_per_node=total / nodes, nodes=nodes)
