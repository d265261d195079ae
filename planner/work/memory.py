"""Bytes held: activations per layer (Korthikanti et al. 2022, arXiv 2205.05198, Sec. 4), model
states per precision recipe and ZeRO stage (Rajbhandari et al. 2020, arXiv 1910.02054, Sec. 5),
and micro-batches in flight per pipeline schedule. All results are bytes per GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..specs import Layout, ModelSpec, TrainingSpec
from .layer import ACT_BYTES, dims
from .mla import mla_activation_bytes
from .moe import moe_activation_bytes


def layer_activation_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout, dense: bool = False) -> float:
    """Activations one layer keeps for backward, one micro-batch, bytes per GPU.

    Itemised after Korthikanti et al. 2022, Sec. 4.1 (which for MHA, f = 4h, dropout and no
    fused attention sums to s*b*h*(34 + 5*a*s/h), Eq. 1; with tensor parallelism
    s*b*h*(10 + 24/t + 5*a*s/(h*t)), Eq. 2; with sequence parallelism s*b*h/t*(34 + 5*a*s/h),
    Eq. 4; selective recompute drops the 5*a*s/h term, Eq. 6; full recompute keeps 2*s*b*h,
    the layer input). GQA, SwiGLU and fused (flash) attention follow the same itemisation; MLA
    attention and MoE FFNs (not ``dense``) are itemised in planner.work.mla / planner.work.moe.
    """
    d = dims(model, training, layout)
    T, h = d.tokens, d.hidden
    tn = d.norm_tokens  # replicated parts are split by t only with sequence parallelism
    if training.recompute == "full":
        return 2.0 * tn * h  # the layer input (Korthikanti Sec. 5: 2sbh, /t with SP)
    drop = 1 if training.dropout else 0
    q_w = d.heads_local * d.head_dim
    kv_w = d.kv_heads_local * d.head_dim
    replicated = tn * h * (ACT_BYTES * 4 + 2 * drop)  # 2 norm inputs, qkv & fc1 inputs, 2 masks
    attn = T * ACT_BYTES * (q_w + kv_w)  # Q and K for QK^T
    attn += T * ACT_BYTES * kv_w  # V
    attn += T * ACT_BYTES * q_w  # attention output = projection input
    if model.attention_kind == "mla":
        attn = mla_activation_bytes(model, d)
    mlp = T * ACT_BYTES * d.ffn_local * d.ffn_gate_factor  # activation-function input(s)
    mlp += T * ACT_BYTES * d.ffn_local  # fc2 input
    if model.is_moe and not dense:
        mlp = moe_activation_bytes(model, training, layout)
    scores = d.batch * d.heads_local * d.seq * d.seq
    if training.flash_attention:
        core = d.batch * d.heads_local * d.seq * 4.0  # fp32 log-sum-exp per query row
    elif training.recompute == "selective":
        core = 0.0
    else:
        core = scores * (ACT_BYTES + drop + ACT_BYTES * drop)  # softmax out, mask, dropout out
    return replicated + attn + mlp + core


def layer_working_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> float:
    """Extra activations of the one layer being recomputed during full-recompute backward, bytes."""
    if training.recompute != "full":
        return 0.0
    full = training.replace(recompute="none")
    if model.num_dense_layers:  # the larger of a MoE layer and a dense layer
        return max(layer_activation_bytes(model, full, layout), layer_activation_bytes(model, full, layout, True))
    return layer_activation_bytes(model, full, layout)


def head_activation_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> float:
    """Logits (16-bit) and fp32 softmax of the cross-entropy for one micro-batch, last stage, bytes."""
    d = dims(model, training, layout)
    return d.tokens * d.vocab_local * (ACT_BYTES + 4.0)


def in_flight_microbatches(layout: Layout, stage: int, micro_batches: int) -> float:
    """Micro-batches whose activations stage ``stage`` holds at its peak.

    GPipe holds all m (Huang et al. 2019); 1F1B and ZB-H1 hold p - stage (Narayanan et al. 2021,
    Sec. 2.2; Qi et al. 2023 keep 1F1B's peak for ZB-H1); interleaved 1F1B holds the
    2(p-i-1) + (v-1)p + 1 warm-up chunks of Megatron-LM's schedule, i.e. p + (p-1)/v micro-batch
    equivalents on the first stage (Korthikanti et al. 2022, Sec. 4.2.3). Capped at m.
    """
    p, m = layout.pp, micro_batches
    if layout.schedule == "gpipe":
        return float(m)
    held = float(p - stage)
    if layout.schedule == "interleaved-1f1b":
        v = layout.vpp  # Megatron warm-up: 2(p-i-1) + (v-1)p + 1 chunks of 1/v of the stage's layers
        held = (2 * (p - stage - 1) + (v - 1) * p + 1) / v
    return min(held, float(m))


def in_flight_per_stage(layout: Layout, micro_batches: int) -> list[float]:
    """``in_flight_microbatches`` of every stage, in stage order."""
    return [in_flight_microbatches(layout, i, micro_batches) for i in range(layout.pp)]


@dataclass(frozen=True, slots=True)
class StateBytesPerParam:
    """Bytes per parameter of model states before sharding."""

    weights: float
    grads: float
    optimizer: float


def state_bytes_per_param(training: TrainingSpec) -> StateBytesPerParam:
    """Bytes per parameter for the precision recipe.

    megatron: 16-bit weights, fp32 main grads, fp32 master + Adam m, v (2 + 4 + 12; Narayanan et
    al. 2021 / Megatron-LM); deepspeed: 16-bit weights and grads, fp32 master + m + v
    (2 + 2 + 12, Rajbhandari et al. 2020 Sec. 3.1); torch-amp: fp32 weights and grads, m + v
    (4 + 4 + 8); fsdp (FSDP2 mixed precision): fp32 sharded weights and grads, m + v
    (4 + 4 + 8; 16-bit copies are transient gather buffers). SGD keeps no moments.
    """
    moments = 8.0 if training.optimizer == "adam" else 0.0
    if training.recipe == "megatron":
        return StateBytesPerParam(2.0, 4.0, 4.0 + moments)
    if training.recipe == "deepspeed":
        return StateBytesPerParam(2.0, 2.0, 4.0 + moments)
    return StateBytesPerParam(4.0, 4.0, moments)


def grad_reduce_bytes_per_param(training: TrainingSpec) -> float:
    """Bytes per parameter in the data-parallel gradient reduction (fp32 except DeepSpeed's 16-bit)."""
    return 2.0 if training.recipe == "deepspeed" else 4.0


def param_gather_bytes_per_param(training: TrainingSpec) -> float:
    """Bytes per parameter when ZeRO/FSDP gathers parameters: the 16-bit compute copies (Megatron,
    DeepSpeed, FSDP2 mixed precision with a 16-bit ``param_dtype``), or the fp32 parameters themselves
    under torch-amp, where autocast casts after the gather."""
    return 4.0 if training.recipe == "torch-amp" else float(ACT_BYTES)


@dataclass(frozen=True, slots=True)
class StateBytes:
    """Model-state bytes per GPU after ZeRO/FSDP sharding."""

    weights: float
    grads: float
    optimizer: float


def sharded_state_bytes(params: float, training: TrainingSpec, layout: Layout) -> StateBytes:
    """States of ``params`` parameters held by one GPU: stage 1 shards optimizer state, 2 also
    gradients, 3 (and FSDP) also weights, each over the shard group (Rajbhandari et al. 2020,
    Fig. 1). The Megatron distributed optimizer counts as stage 1."""
    per = state_bytes_per_param(training)
    n = layout.shard_degree
    stage = layout.effective_zero_stage
    if training.distributed_optimizer and stage == 0:
        stage = 1
    return StateBytes(
        weights=params * per.weights / (n if stage >= 3 else 1),
        grads=params * per.grads / (n if stage >= 2 else 1),
        optimizer=params * per.optimizer / (n if stage >= 1 else 1),
    )
