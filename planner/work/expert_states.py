"""Model states and gradient reduction of the routed experts (Megatron-Core expert grid): one rank
holds E/ep experts split over etp; their gradients are reduced, and their optimizer states (and
with ZeRO-2 gradients) sharded, over the expert-data-parallel group edp = tp*cp*dp / (ep*etp)
instead of dp (Megatron-Core ``expert_data_parallel_group``; DeepSpeed-MoE, arXiv 2201.05596,
Sec. 5.2). Bytes per parameter are ``memory.state_bytes_per_param``'s; everything per GPU.

FSDP / ZeRO-3 with expert parallelism (torchtitan 0.3.0 models/qwen3/parallelize.py:79-107 and
config/configs.py:279-287; NeMo Automodel likewise): the dense part is FSDP-sharded over all dp x cp
ranks (``memory.sharded_state_bytes``, ``step._dp_comm``), the routed experts over ep and FSDP-sharded over
the remaining ``efsdp = dp_shard * cp * tp / ep`` ranks (torchtitan distributed/parallel_dims.py:279), which
is edp here (etp = 1 in torchtitan). Per micro-batch each layer's expert shard is all-gathered over edp
before its forward and again before its backward (FSDP2 reshards after forward), and its gradients
reduce-scattered over edp: the dense part's ZeRO-3 pattern (Zhao et al. 2023, PyTorch FSDP, arXiv
2304.11277, Sec. 3.2) on the expert group, one call per layer.
"""

from __future__ import annotations

from ..specs import Layout, ModelSpec, TrainingSpec
from .memory import (
    StateBytes,
    grad_reduce_bytes_per_param,
    param_gather_bytes_per_param,
    state_bytes_per_param,
)
from .moe import expert_parameters_per_rank
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
    ``memory.sharded_state_bytes`` shards the rest over dp (ZeRO-3 / FSDP: the weights too)."""
    per = state_bytes_per_param(training)
    n, stage = layout.expert_dp, _stage(training, layout)
    return StateBytes(weights=params * per.weights / (n if stage >= 3 else 1),
                      grads=params * per.grads / (n if stage >= 2 else 1),
                      optimizer=params * per.optimizer / (n if stage >= 1 else 1))


def expert_optimizer_params(params: float, training: TrainingSpec, layout: Layout) -> float:
    """Routed-expert parameters this GPU updates."""
    return params / (layout.expert_dp if _stage(training, layout) >= 1 else 1)


def expert_dp_comm(params: float, training: TrainingSpec, layout: Layout,
                   units: int = 1) -> tuple[tuple[Collective, ...], tuple[Collective, ...]]:
    """(per micro-batch, per step) collectives of the experts over edp: the per-step gradient reduction (and
    ZeRO-1/2 parameter all-gather), or under ZeRO-3 / FSDP the gathers and reduce-scatters of every micro-batch,
    ``units`` calls each (one per MoE layer of the stage)."""
    if layout.expert_dp == 1 or params <= 0:
        return (), ()
    grad_bytes = params * grad_reduce_bytes_per_param(training)
    gather_bytes = params * param_gather_bytes_per_param(training)
    stage = _stage(training, layout)
    if stage == 0:
        return (), (Collective("expert_grads.allreduce", "all-reduce", "edp", grad_bytes, "bwd_weight"),)
    if stage < 3:
        return (), (Collective("expert_grads.reduce_scatter", "reduce-scatter", "edp", grad_bytes, "bwd_weight"),
                    Collective("expert_params.allgather", "all-gather", "edp", gather_bytes, "fwd"))
    return (Collective("expert_params.allgather.fwd", "all-gather", "edp", gather_bytes, "fwd", units),
            Collective("expert_params.allgather.bwd", "all-gather", "edp", gather_bytes, "bwd_input", units),
            Collective("expert_grads.reduce_scatter", "reduce-scatter", "edp", grad_bytes, "bwd_weight", units)), ()


def expert_zero3_working_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> float:
    """Gathered expert weights ZeRO-3 / FSDP holds while a layer runs: the current layer's and the prefetched
    next one's routed experts on this rank (as ``step_bytes`` counts the dense layer's), bytes; 0 otherwise."""
    if _stage(training, layout) < 3 or layout.expert_dp == 1 or not model.is_moe:
        return 0.0
    return 2 * expert_parameters_per_rank(model, layout) * param_gather_bytes_per_param(training)
