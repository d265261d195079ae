"""Model states and gradient reduction of the routed experts (Megatron-Core expert grid): one rank
holds E/ep experts split over etp; their gradients are reduced, and their optimizer states (and
with ZeRO-2 gradients) sharded, over the expert-data-parallel group edp = tp*cp*dp / (ep*etp)
instead of dp (Megatron-Core ``expert_data_parallel_group``; DeepSpeed-MoE, arXiv 2201.05596,
Sec. 5.2). Bytes per parameter are ``memory.state_bytes_per_param``'s; everything per GPU.
"""

from __future__ import annotations

from ..specs import Layout, ModelSpec, TrainingSpec
from .memory import (
    StateBytes,
    grad_reduce_bytes_per_param,
    param_gather_bytes_per_param,
    state_bytes_per_param,
)
from .ops import Collective
from .params import expert_ffn_size, mlp_parameters


def routed_expert_parameters(model: ModelSpec) -> int:
    """Routed-expert parameters of one MoE layer (all E experts)."""
    return model.num_experts * mlp_parameters(model, expert_ffn_size(model)) if model.is_moe else 0


def _stage(training: TrainingSpec, layout: Layout) -> int:
    stage = layout.effective_zero_stage
    return 1 if (training.distributed_optimizer and stage == 0) else stage


def expert_state_bytes(params: float, training: TrainingSpec, layout: Layout) -> StateBytes:
    """States of ``params`` routed-expert parameters on one GPU, sharded over edp like
    ``memory.sharded_state_bytes`` shards the rest over dp (ZeRO-3 is refused for MoE)."""
    per = state_bytes_per_param(training)
    n, stage = layout.expert_dp, _stage(training, layout)
    return StateBytes(weights=params * per.weights, grads=params * per.grads / (n if stage >= 2 else 1),
                      optimizer=params * per.optimizer / (n if stage >= 1 else 1))


def expert_optimizer_params(params: float, training: TrainingSpec, layout: Layout) -> float:
    """Routed-expert parameters this GPU updates."""
    return params / (layout.expert_dp if _stage(training, layout) >= 1 else 1)


def expert_dp_comm(params: float, training: TrainingSpec, layout: Layout) -> tuple[Collective, ...]:
    """Per-step gradient reduction (and ZeRO-1/2 parameter all-gather) of the experts over edp."""
    if layout.expert_dp == 1 or params <= 0:
        return ()
    grad_bytes = params * grad_reduce_bytes_per_param(training)
    if _stage(training, layout) == 0:
        return (Collective("expert_grads.allreduce", "all-reduce", "edp", grad_bytes, "bwd_weight"),)
    return (Collective("expert_grads.reduce_scatter", "reduce-scatter", "edp", grad_bytes, "bwd_weight"),
            Collective("expert_params.allgather", "all-gather", "edp",
                       params * param_gather_bytes_per_param(training), "fwd"))
