"""Sharded data parallelism (ZeRO-3 / FSDP) as each framework runs it: when the gathered weights are
freed, what a stage holds gathered, and the bytes its gathers move. Bytes per GPU.

- Per micro-batch (FSDP2 without pipelining, FSDP1 FULL_SHARD, DeepSpeed ZeRO-3): each block's weights
  are gathered before its forward, freed after it (``recipe.fsdp_reshard_after_forward``: torchtitan keeps
  the last block, which backward would gather again at once), gathered again for its backward and its
  gradients reduce-scattered after it (Rajbhandari et al. 2020, arXiv 1910.02054, Sec. 7; Zhao et al.
  2023, arXiv 2304.11277, Sec. 3.2). Two blocks are gathered at once (the current and the prefetched
  one); an FSDP root unit (embedding, final norm, output) is gathered for the whole forward and again
  for the whole backward (torchtitan ``fully_shard(model)``; HF / llm-foundry's outer FSDP unit).
- Kept unsharded across the step (``recipe.fsdp_pp_keeps_unsharded`` with pipelining: torchtitan sets
  ``reshard_after_forward=False`` "to avoid per-microbatch all-gathers" and torch.distributed.pipelining
  syncs gradients on the last backward only): the stage's weights are gathered once per step, held
  through every micro-batch, and its gradients accumulate unsharded in the reduce dtype until one
  reduce-scatter after the last micro-batch.
- Stream pools (``recipe.fsdp_stream_pools``, FSDP2): all-gather outputs are allocated in the all-gather
  copy-in stream and reduce-scatter outputs (the sharded gradients are views of them) in the reduce-scatter
  stream (torch/distributed/fsdp/_fully_shard/_fsdp_collectives.py ``foreach_all_gather``, ``foreach_reduce``);
  the CUDA caching allocator hands a freed block only to allocations on the stream that allocated it (PyTorch
  docs, "CUDA semantics: memory management" and ``Tensor.record_stream``), so those pools stay reserved beside the
  compute stream's and the default stream cannot reuse them (the reason given in pytorch/pytorch PR 129721,
  which moved the reduce-scatter input to the default stream and kept the outputs in their stream).
- fp8 all-gather (``training.fp8_all_gather``, torchao ``enable_fsdp_float8_all_gather``): the Linear
  weights are gathered as fp8, 1 byte each.
"""

from __future__ import annotations

from ..specs import Layout, TrainingSpec
from .context import grad_group_size
from .memory import grad_reduce_bytes_per_param, param_gather_bytes_per_param

FP8_BYTES = 1.0


def sharded_weights(layout: Layout) -> bool:
    """Whether ZeRO-3 / FSDP shards the weights over more than one rank."""
    return layout.effective_zero_stage == 3 and grad_group_size(layout) > 1


def keeps_unsharded(training: TrainingSpec, layout: Layout) -> bool:
    """Whether the stage's gathered weights stay unsharded across the step (see the module docstring)."""
    return sharded_weights(layout) and layout.pp > 1 and training.recipe_spec.fsdp_pp_keeps_unsharded


def gathered_bytes(params: float, linear_params: float, training: TrainingSpec) -> float:
    """Bytes of ``params`` parameters once gathered, ``linear_params`` of them Linear weights (fp8 when
    ``training.fp8_all_gather`` with fp8 precision, else the recipe's gather bytes like the rest)."""
    per = param_gather_bytes_per_param(training)
    if training.fp8_all_gather and training.precision == "fp8":
        return (params - linear_params) * per + linear_params * FP8_BYTES
    return params * per


def backward_gathers(units: int, training: TrainingSpec) -> float:
    """Units (blocks) gathered again for backward out of ``units``: all of them, or all but the last
    block when the recipe does not reshard it after forward."""
    if training.recipe_spec.fsdp_reshard_after_forward == "all-but-last" and units > 1:
        return units - 1
    return units


def held_bytes(stage_params: float, stage_linear: float, layer_params: float, layer_linear: float,
               root_params: float, training: TrainingSpec, layout: Layout) -> tuple[float, float]:
    """(gathered weights held through forward and backward, transient bytes of the backward) of one
    stage: the whole stage gathered and its gradients accumulating unsharded in the reduce dtype when
    ``keeps_unsharded``; else the current and the prefetched block plus, for FSDP (not DeepSpeed), the
    root unit's ``root_params`` gathered for each pass."""
    if not sharded_weights(layout):
        return 0.0, 0.0
    if keeps_unsharded(training, layout):
        return (gathered_bytes(stage_params, stage_linear, training),
                stage_params * grad_reduce_bytes_per_param(training))
    root = gathered_bytes(root_params, 0.0, training) if training.recipe_spec.fsdp_sharding else 0.0
    return root, 2 * gathered_bytes(layer_params, layer_linear, training)


def grads_in_reduce_pool(training: TrainingSpec, layout: Layout) -> bool:
    """Whether the sharded gradients' bytes stay reserved at every moment of the step: they live in the
    reduce-scatter stream's pool (``recipe.fsdp_stream_pools``), which the compute stream never reuses after
    ``zero_grad`` frees them."""
    return sharded_weights(layout) and training.recipe_spec.fsdp_stream_pools


def all_gather_pool_bytes(root_params: float, layer_params: float, layer_linear: float, training: TrainingSpec,
                          layout: Layout) -> float:
    """Bytes the all-gather stream's pool keeps reserved (``recipe.fsdp_stream_pools``): the largest pair of
    gathers in flight at once, the current unit's and the prefetched one's (the root unit, ``root_params``, with
    the first block; else two blocks)."""
    if not grads_in_reduce_pool(training, layout):
        return 0.0
    layer = gathered_bytes(layer_params, layer_linear, training)
    return max(gathered_bytes(root_params, 0.0, training), layer) + layer


def copy_out_bytes(gathered: float, training: TrainingSpec) -> float:
    """HBM bytes of copying a gather of ``gathered`` bytes into the unsharded parameters on the compute
    stream (FSDP2 ``foreach_all_gather_copy_out``: split_with_sizes_copy, read + write), or 0 where the
    gather lands in place (``recipe.fsdp_param_copies`` false)."""
    return 2.0 * gathered if training.recipe_spec.fsdp_param_copies else 0.0
