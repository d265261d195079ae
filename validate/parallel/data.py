"""Data parallelism: FSDP2 ``fully_shard`` (ZeRO-3, or ZeRO-2 when parameters stay gathered after
forward), DDP for plain replicas, and ZeRO-1 via ``ZeroRedundancyOptimizer``.

ZeRO stages after Rajbhandari et al. 2020 (arXiv 1910.02054), section 5: stage 1 shards optimizer state,
stage 2 also gradients, stage 3 also parameters. FSDP2 is PyTorch's per-parameter sharding (Zhao et al.
2023, arXiv 2304.11277, for FSDP's design).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

from planner.specs import Layout

from ..job import JobSpec
from ..model import make_job_optimizer, optimizer_class
from ..numerics import LOSS_SCALE


def apply_data_parallel(modules: list[nn.Module], layout: Layout, dp_mesh: DeviceMesh,
                        mixed_precision: bool = False) -> list[nn.Module]:
    """Wrap each module for data parallelism over ``dp_mesh``; returns the modules to run. With
    ``mixed_precision`` FSDP2 gathers bf16 parameters and reduces gradients in fp32 (torchtitan's policy)."""
    if layout.dp == 1:
        return modules
    stage = layout.effective_zero_stage
    if stage >= 2:
        reshard = stage == 3
        policy = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
                  if mixed_precision else MixedPrecisionPolicy())
        for module in modules:
            for block in module.layers.values():
                fully_shard(block, mesh=dp_mesh, reshard_after_forward=reshard, mp_policy=policy)
            fully_shard(module, mesh=dp_mesh, reshard_after_forward=reshard, mp_policy=policy)
        return modules
    return [DistributedDataParallel(m, process_group=dp_mesh.get_group()) for m in modules]


def make_optimizer(modules: list[nn.Module], layout: Layout, dp_mesh: DeviceMesh, job: JobSpec):
    """Adam (as ``JobSpec.optimizer_options``) or SGD over every parameter; sharded by ``ZeroRedundancyOptimizer`` for
    ZeRO-1 with dp > 1."""
    params = [p for m in modules for p in m.parameters()]
    options = job.optimizer_options()
    if options.get("fused") or options.get("foreach"):  # a multi-tensor call takes one tensor type: tensor
        # parallelism without sequence parallelism leaves the norms plain beside DTensor weights
        groups = [[p for p in params if isinstance(p, DTensor)], [p for p in params if not isinstance(p, DTensor)]]
        params = [{"params": g} for g in groups if g]
    if layout.dp > 1 and layout.effective_zero_stage == 1:
        return ZeroRedundancyOptimizer(params, optimizer_class=optimizer_class(job.optimizer),
                                       process_group=dp_mesh.get_group(), lr=job.lr,
                                       parameters_as_bucket_view=True, **options)  # one broadcast per rank's shard
    return make_job_optimizer(params, job)


def make_grad_scaler(job: JobSpec, device: torch.device):
    """Dynamic loss scaler of an fp16 job (Micikevicius et al. 2018): FSDP2's sharded scaler when the
    gradients are sharded (ZeRO >= 2), which agrees on overflow across the shard group, else torch's."""
    if job.layout.dp > 1 and job.layout.effective_zero_stage >= 2:
        from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

        return ShardedGradScaler(device.type, init_scale=LOSS_SCALE)
    return torch.amp.GradScaler(device.type, init_scale=LOSS_SCALE)
