"""Bytes held: activations per layer (Korthikanti et al. 2022, arXiv 2205.05198, Sec. 4), model
states per precision recipe and ZeRO stage (Rajbhandari et al. 2020, arXiv 1910.02054, Sec. 5),
and micro-batches in flight per pipeline schedule. All results are bytes per GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..specs import Layout, ModelSpec, TrainingSpec
from .context import cp_working_bytes, resolve_cp_kind, shard_group_size
from .kernels import FP32, loss_cache_bytes, loss_forward_bytes, loss_peak_bytes, residual_bytes
from .layer import ACT_BYTES, dims, layer_forward, layer_linear_params
from .mla import mla_activation_bytes
from .moe import moe_activation_bytes
from .sac import sac_split


def _norm_saved_bytes(model: ModelSpec, recipe) -> float:
    """Bytes per element one pre-norm keeps for backward, its output included (the next GEMM's
    input): fused, the 16-bit input and output; eager autocast LayerNorm, the fp32 input and the bf16
    cast of its output; eager RMSNorm, also the fp32 upcast of x and the normalised value before the
    weight multiply."""
    if recipe.norm_kernel == "fused":
        return 2.0 * ACT_BYTES
    if model.norm_kind == "rmsnorm" and recipe.norm_kernel == "handwritten":
        return FP32 + 2.0 * ACT_BYTES + (FP32 - ACT_BYTES if recipe.autocast else 0.0)
    return residual_bytes(recipe) + ACT_BYTES


def gathered_input_extra(d, recipe) -> float:
    """Bytes a column-parallel Linear keeps beyond the sequence-parallel shard of its input when the recipe
    saves the all-gathered input (``recipe.sp_saves_gathered_inputs``): (tokens - tokens / tp) x h x 2 B."""
    if not recipe.sp_saves_gathered_inputs or d.norm_tokens == d.tokens:
        return 0.0
    return float(ACT_BYTES) * (d.tokens - d.norm_tokens) * d.hidden


def layer_activation_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout, dense: bool = False) -> float:
    """Activations one layer keeps for backward, one micro-batch, bytes per GPU.

    Itemised after Korthikanti et al. 2022, Sec. 4.1 (which for MHA, f = 4h, dropout and no
    fused attention sums to s*b*h*(34 + 5*a*s/h), Eq. 1; with tensor parallelism
    s*b*h*(10 + 24/t + 5*a*s/(h*t)), Eq. 2; with sequence parallelism s*b*h/t*(34 + 5*a*s/h),
    Eq. 4; selective recompute drops the 5*a*s/h term, Eq. 6; full recompute keeps 2*s*b*h,
    the layer input). GQA, SwiGLU and fused (flash) attention follow the same itemisation; the
    recipe adds what eager PyTorch saves (planner/work/kernels.py): fp32 norm inputs under autocast,
    the attention output's contiguous copy, the eager SwiGLU's silu output. MLA attention and MoE FFNs
    (not ``dense``) are itemised in planner.work.mla / planner.work.moe.
    """
    d = dims(model, training, layout)
    recipe = training.recipe_spec
    T, h = d.tokens, d.hidden
    tn = d.norm_tokens  # replicated parts are split by t only with sequence parallelism
    if training.recompute == "full":
        return float(residual_bytes(recipe)) * tn * h  # the layer input (Korthikanti Sec. 5: 2sbh, /t with SP)
    if training.recompute == "op":  # the checkpointed input and what the per-op policy saves (work/sac.py)
        saved, _ = sac_split(layer_forward(model, training, layout, dense=dense), model, training, d)
        return float(residual_bytes(recipe)) * tn * h + saved
    drop = 1 if training.dropout else 0
    q_w = d.heads_local * d.head_dim
    kv_w = d.kv_heads_local * d.head_dim
    replicated = tn * h * (2 * _norm_saved_bytes(model, recipe) + 2 * drop)  # 2 norms (in + out), 2 masks
    replicated += 2 * gathered_input_extra(d, recipe)  # DTensor SP: qkv and fc1 keep the gathered input
    attn = T * ACT_BYTES * (q_w + kv_w)  # Q and K for QK^T
    attn += T * ACT_BYTES * kv_w  # V
    if recipe.gqa_repeat_kv:  # the kernel saves the repeated K and V (kernels.repeat_kv_ops)
        attn += T * ACT_BYTES * 2 * (q_w - kv_w)
    attn += T * ACT_BYTES * q_w  # attention output = projection input
    if recipe.qkv_split_copies:
        attn += T * ACT_BYTES * q_w  # the transposed .contiguous() copy the projection saves
    mlp = T * ACT_BYTES * d.ffn_local * d.ffn_gate_factor  # activation-function input(s)
    mlp += T * ACT_BYTES * d.ffn_local  # fc2 input
    if d.ffn_gate_factor == 2 and not recipe.bias_activation_fused:
        mlp += T * ACT_BYTES * d.ffn_local  # eager silu(x1) kept by the mul
    if model.attention_kind == "mla":
        attn = mla_activation_bytes(model, d)
    moe_ffn = model.is_moe and not dense
    if moe_ffn:
        mlp = moe_activation_bytes(model, training, layout)
    scores = d.batch * d.heads_local * d.seq * d.seq
    if training.flash_attention:
        core = d.batch * d.heads_local * d.seq * 4.0  # fp32 log-sum-exp per query row
    elif training.recompute == "selective":
        core = 0.0
    else:
        core = scores * (ACT_BYTES + drop + ACT_BYTES * drop)  # softmax out, mask, dropout out
    total = replicated + attn + mlp + core
    if training.precision == "fp8":  # TE saves each Linear's input in fp8 (1 B) instead of 16-bit
        # qkv and fc1 inputs, proj and fc2 inputs (a MoE FFN's expert inputs are kept 16-bit here)
        gin = T if recipe.sp_saves_gathered_inputs else tn
        linear_inputs = (1 if moe_ffn else 2) * gin * h + T * q_w + (0 if moe_ffn else T * d.ffn_local)
        total -= linear_inputs * (ACT_BYTES - 1)
    return total


def layer_working_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> float:
    """Transient bytes of the layer being computed: its recomputed activations during full-recompute
    backward, plus the context-parallel K/V buffers in flight (planner/work/context.py), bytes."""
    d = dims(model, training, layout)
    mla = model.attention_kind == "mla"  # MLA exchanges K and V of every head at the core's mean width
    repeated = mla or training.recipe_spec.gqa_repeat_kv  # K/V exchanged at every query head
    cp = cp_working_bytes(batch=d.batch, kv_heads_local=d.heads_local if repeated else d.kv_heads_local,
                          head_dim=model.attention_core_head_dim if mla else d.head_dim, seq_local=d.seq,
                          cp=layout.cp, kind=resolve_cp_kind(layout, training))
    if training.recompute not in ("full", "op"):
        return cp
    full = training.replace(recompute="none")  # the replayed layer's tensors, alive during its backward
    if model.num_dense_layers:  # the larger of a MoE layer and a dense layer
        return cp + max(layer_activation_bytes(model, full, layout), layer_activation_bytes(model, full, layout, True))
    return cp + layer_activation_bytes(model, full, layout)


def head_activation_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> float:
    """Last stage at the start of backward: the loss temporaries at their peak (kernels.loss_peak_bytes)
    plus what the final norm keeps, for one micro-batch, bytes."""
    d = dims(model, training, layout)
    recipe = training.recipe_spec
    norm = d.norm_tokens * d.hidden * (_norm_saved_bytes(model, recipe) if recipe.norm_kernel != "fused" else 0.0)
    head_input = gathered_input_extra(d, recipe)  # the output projection keeps the gathered norm output
    return loss_peak_bytes(d.tokens, d.vocab_local, recipe, layout.tp > 1) + norm + head_input


def head_cache_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> float:
    """Bytes the caching allocator keeps reserved beside ``head_activation_bytes`` at the start of backward
    when the step frees the logits before it (kernels.loss_cache_bytes: 2 B per local logit), one micro-batch,
    bytes. The caller applies it where the step does that: torchtitan's path without pipelining."""
    d = dims(model, training, layout)
    return loss_cache_bytes(d.tokens, d.vocab_local, training.recipe_spec)


def head_forward_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> float:
    """Loss temporaries at the end of the forward pass (kernels.loss_forward_bytes), bytes."""
    d = dims(model, training, layout)
    return loss_forward_bytes(d.tokens, d.vocab_local, training.recipe_spec, layout.tp > 1)


def pipeline_output_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout, last: bool, sent_bytes: float,
                          micro_batches: int) -> tuple[float, float]:
    """(bytes per micro-batch in flight, bytes held to the end of the step) of the stage outputs the pipeline
    schedule keeps (``recipe.pipeline_outputs_kept``), per GPU; (0, 0) without pipelining. A stage's output is what
    it sends on (``sent_bytes``, planner.work.step_bytes.pipeline_send_bytes); the last stage's is its 16-bit logits,
    tokens x vocabulary shard x 2 B (the model returns them; the loss upcasts its own copy: torchtitan
    ``loss_fn(pred, labels)`` on ``pred.flatten(0, 1).float()``, train.py at 9dec370, components/loss.py since).

    torch.distributed.pipelining (stage.py ``forward_one_chunk``) caches each output in ``fwd_cache`` until its
    micro-batch's backward pops it, and appends it to ``output_chunks``, which ``step()`` merges and returns at the
    step's end and ``clear_runtime_states`` frees at the next step's start: every stage until pytorch/pytorch#153383
    (2025-05-13, "we should not keep the outputs of each stage in memory"), the last stage until callers pass
    ``return_outputs=False`` (pytorch/pytorch#165822; torchtitan #1922, 2025-10-22, "release the memory earlier");
    pytorch/pytorch#138504 (2024-10) only detaches them from the autograd graph. The last stage runs one micro-batch
    at a time, so its ``backward`` share is one set of logits, held with the loss. Counted once per rank: an
    interleaved rank's other ``vpp - 1`` stages keep their sent activations too (tokens x hidden / tp each, small
    beside the logits), which are not counted, since the stage records are shared by every schedule
    (planner.work.stage_templates.SCHEDULE_FIELDS)."""
    kept = training.recipe_spec.pipeline_outputs_kept
    if layout.pp == 1 or kept == "none":
        return 0.0, 0.0
    if last:
        d = dims(model, training, layout)
        logits = float(ACT_BYTES) * d.tokens * d.vocab_local
        return 0.0, logits * (1 if kept == "backward" else micro_batches)
    if kept == "step-all":
        return 0.0, sent_bytes * micro_batches
    return sent_bytes, 0.0


def weight_copy_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout, layers: int,
                      has_head: bool, dense_layers: int = 0) -> tuple[float, float]:
    """(bf16 weight copies autocast holds at the end of forward, those still held at the start of
    backward), bytes per GPU. Autocast caches the cast of each fp32 Linear weight inside the autocast
    region and autograd saves it for the weight's backward; a checkpointed layer's copies are not
    saved, so they are freed when the region exits before backward (PyTorch autocast cache,
    aten/src/ATen/autocast_mode.cpp cached_cast). Other recipes: none (the weights are 16-bit or gathered).
    ``layers`` layers of the model's kind plus ``dense_layers`` dense-FFN layers (a MoE model's first stage)."""
    if not training.recipe_spec.autocast:
        return 0.0, 0.0
    per_layer = layer_linear_params(model, layout)[0] * layers
    if dense_layers:
        per_layer += layer_linear_params(model, layout, dense=True)[0] * dense_layers
    d = dims(model, training, layout)
    head = d.vocab_local * d.hidden if has_head else 0.0
    cache = ACT_BYTES * (per_layer + head)
    saved = ACT_BYTES * ((0.0 if training.recompute == "full" else per_layer) + head)
    return cache, saved


def in_flight_microbatches(layout: Layout, stage: int, micro_batches: int) -> float:
    """Micro-batches whose activations stage ``stage`` holds at its peak (``in_flight_per_stage``)."""
    return in_flight_per_stage(layout, micro_batches)[stage]


def in_flight_per_stage(layout: Layout, micro_batches: int) -> list[float]:
    """Micro-batches whose activations each stage holds at its peak, in stage order.

    GPipe holds all m (Huang et al. 2019); 1F1B holds p - stage (Narayanan et al. 2021, Sec. 2.2);
    ZB-H1 holds p on every stage (Qi et al. 2023, Sec. 2.1: stage i delays its W passes by i
    micro-batches, so i of its p wait for W; the first stage keeps 1F1B's peak); interleaved 1F1B holds the
    2(p-i-1) + (v-1)p + 1 warm-up chunks of Megatron-LM's schedule, i.e. p + (p-1)/v micro-batch
    equivalents on the first stage (Korthikanti et al. 2022, Sec. 4.2.3). Capped at m.
    """
    p, m = layout.pp, float(micro_batches)
    if layout.schedule == "gpipe":
        return [m] * p
    if layout.schedule == "zb-h1":
        return [min(float(p), m)] * p
    if layout.schedule == "interleaved-1f1b":
        v = layout.vpp  # Megatron warm-up: 2(p-i-1) + (v-1)p + 1 chunks of 1/v of the stage's layers
        return [min((2 * (p - i - 1) + (v - 1) * p + 1) / v, m) for i in range(p)]
    capped = max(0, p - micro_batches)  # stages whose p - stage exceeds m hold m
    return [m] * capped + list(map(float, range(p - capped, 0, -1)))


@dataclass(frozen=True, slots=True)
class StateBytesPerParam:
    """Bytes per parameter of model states before sharding."""

    weights: float
    grads: float
    optimizer: float


def state_bytes_per_param(training: TrainingSpec) -> StateBytesPerParam:
    """Bytes per parameter for the training's framework recipe (hwprofiles/recipes/<name>.yaml):
    weights, gradients, and fp32 master copy + Adam m, v (8 B; SGD keeps no moments).

    megatron-lm / megatron-core: 2 + 4 + (4 + 8) (Narayanan et al. 2021 / Megatron-LM); deepspeed:
    2 + 2 + (4 + 8) (Rajbhandari et al. 2020 Sec. 3.1); torch-amp, torchtitan (FSDP2), fsdp1: fp32
    weights and grads, 4 + 4 + 8 (16-bit copies are transient autocast casts or gather buffers).
    """
    r = training.recipe_spec
    moments = 8.0 if training.optimizer == "adam" else 0.0
    return StateBytesPerParam(r.weight_bytes, grad_bytes_per_param(training), r.master_bytes + moments)


def _fp16_grads(training: TrainingSpec) -> float | None:
    """The recipe's 16-bit gradient bytes when the run is fp16 and the recipe keeps fp16 gradients, else None."""
    return training.recipe_spec.fp16_grad_bytes if training.precision == "fp16" else None


def grad_bytes_per_param(training: TrainingSpec) -> float:
    """Bytes per parameter of the held gradients: the recipe's grad_bytes, or its fp16_grad_bytes under fp16
    (Megatron keeps fp16 main_grad unless --accumulate-allreduce-grads-in-fp32; bf16 forces fp32)."""
    fp16 = _fp16_grads(training)
    return training.recipe_spec.grad_bytes if fp16 is None else fp16


def grad_reduce_bytes_per_param(training: TrainingSpec) -> float:
    """Bytes per parameter in the data-parallel gradient reduction (the recipe's grad_reduce_bytes, or its
    fp16_grad_bytes under fp16)."""
    fp16 = _fp16_grads(training)
    return training.recipe_spec.grad_reduce_bytes if fp16 is None else fp16


def optimizer_grad_copy_bytes_per_param(training: TrainingSpec) -> float:
    """Bytes per optimizer-updated parameter of the fp32 gradient copy an fp16 optimizer makes at the step
    when the held gradients are 16-bit and fp32 master weights exist (Megatron Float16Optimizer
    ``_copy_model_grads_to_main_grads``: ``main_param.grad = model_param.main_grad.float()``); 0 otherwise."""
    fp16 = _fp16_grads(training)
    master = training.recipe_spec.master_bytes
    return master if fp16 is not None and master > fp16 else 0.0


def param_gather_bytes_per_param(training: TrainingSpec) -> float:
    """Bytes per parameter when ZeRO/FSDP gathers parameters: the 16-bit compute copies (Megatron,
    DeepSpeed, FSDP with a 16-bit ``param_dtype``), or the fp32 parameters themselves under torch-amp,
    where autocast casts after the gather (the recipe's param_gather_bytes)."""
    return training.recipe_spec.param_gather_bytes


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
    n = shard_group_size(layout)  # dp_shard x cp ranks hold the same parameters (work/context.py)
    stage = layout.effective_zero_stage
    if training.distributed_optimizer and stage == 0:
        stage = 1
    return StateBytes(
        weights=params * per.weights / (n if stage >= 3 else 1),
        grads=params * per.grads / (n if stage >= 2 else 1),
        optimizer=params * per.optimizer / (n if stage >= 1 else 1),
    )
