"""Multi-token prediction (DeepSeek-V3, arXiv 2412.19437, Sec. 2.2; Megatron-Core ``--mtp-num-layers``): after
the last layer, each of ``training.mtp_layers`` modules normalises the last hidden state and the embedding of
the next token, projects their concatenation ``2h -> h`` (``eh_proj``), runs one transformer layer of the
model's kind (a MoE layer for a MoE model) and a second output head and loss, the embedding and output
projection shared with the main model (megatron/core/transformer/multi_token_prediction.py). On the last
pipeline stage, one micro-batch, one tensor-parallel rank; FLOPs and bytes as the blocks they reuse."""

from __future__ import annotations

from ..specs import Layout, ModelSpec, TrainingSpec
from .kernels import norm_ops
from .layer import ACT_BYTES, dims, head_forward, layer_forward, layer_linear_params
from .memory import head_activation_bytes, layer_activation_bytes
from .moe import expert_parameters_per_rank
from .ops import Gemm, Op
from .params import norm_parameters


def mtp_forward(model: ModelSpec, training: TrainingSpec, layout: Layout) -> list[Op]:
    """Forward ops of the MTP modules (empty without them)."""
    d = dims(model, training, layout)
    recipe = training.recipe_spec
    ops: list[Op] = []
    for i in range(training.mtp_layers):
        ops += norm_ops(f"mtp{i}.enorm", d.norm_tokens, d.hidden, model, recipe, "fwd")
        ops += norm_ops(f"mtp{i}.hnorm", d.norm_tokens, d.hidden, model, recipe, "fwd")
        ops.append(Gemm(f"mtp{i}.eh_proj", d.tokens, d.hidden // d.tp, 2 * d.hidden, "fwd"))
        ops += layer_forward(model, training, layout)
        ops += head_forward(model, training, layout)
    return ops


def mtp_params(model: ModelSpec, training: TrainingSpec, layout: Layout) -> tuple[float, float]:
    """(parameters of the MTP modules on one GPU of the last stage apart from routed experts, routed-expert
    parameters): per module two norms, the 2h x h projection (split over tp) and one layer."""
    if not training.mtp_layers:
        return 0.0, 0.0
    layer, _ = layer_linear_params(model, layout)
    experts = expert_parameters_per_rank(model, layout) if model.is_moe else 0.0
    per = 2 * norm_parameters(model) + 2 * model.hidden_size ** 2 / layout.tp + layer - experts
    return training.mtp_layers * per, training.mtp_layers * experts


def mtp_activation_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> float:
    """Activations the MTP modules keep for backward, one micro-batch: the projection's 2h input, one layer's
    activations and the second head's loss temporaries, bytes."""
    if not training.mtp_layers:
        return 0.0
    d = dims(model, training, layout)
    per = (d.tokens * 2 * d.hidden * ACT_BYTES + layer_activation_bytes(model, training, layout)
           + head_activation_bytes(model, training, layout))
    return training.mtp_layers * per
