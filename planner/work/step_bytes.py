"""The bytes part of a training step: per pipeline stage the parameters, model states, activations,
transients and buffers one GPU holds, without the op lists. The search's memory scan reads only
these (``step_bytes``); ``planner.work.step.build_step`` adds the op sets and collectives to the
very same records (``stage_record``), so the memory a StepWork reports is the one checked here.
Bytes per GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from ..specs import Layout, ModelSpec, TrainingSpec, micro_batches_per_step, stage_layer_counts
from . import stage_templates
from .context import grad_group_size, shard_group_size
from .expert_states import (
    expert_optimizer_params,
    expert_state_bytes,
    expert_zero3_working_bytes,
    routed_expert_parameters,
)
from .fsdp import (
    all_gather_pool_bytes,
    backward_gathers,
    copy_out_bytes,
    gathered_bytes,
    grads_in_reduce_pool,
    held_bytes,
    keeps_unsharded,
    sharded_weights,
)
from .layer import ACT_BYTES, dims, layer_linear_params
from .memory import (
    grad_bytes_per_param,
    grad_reduce_bytes_per_param,
    head_activation_bytes,
    head_cache_bytes,
    head_forward_bytes,
    in_flight_per_stage,
    layer_activation_bytes,
    layer_working_bytes,
    optimizer_grad_copy_bytes_per_param,
    pipeline_output_bytes,
    sharded_state_bytes,
    weight_copy_bytes,
)
from .moe import expert_parameters_per_rank
from .mtp import mtp_activation_bytes, mtp_params
from .offload import apply_offload
from .optimizer_tensors import optimizer_tensor_count, sp_norm_grad_allreduce
from .stage import StageBytes, StepBytes

#: The Layout fields one layer's ops and bytes read (planner.work.layer / moe / mla / context / memory);
#: the per-layer caches are keyed by exactly these, so a new field the layer reads must join here.
LAYER_FIELDS = ("tp", "cp", "cp_kind", "sequence_parallel", "ep", "etp")


_LAYER_LAYOUTS: dict[tuple, Layout] = {}


def layer_layout(layout: Layout) -> Layout:
    """``layout`` reduced to ``LAYER_FIELDS`` (the key of the per-layer caches); one Layout object
    per distinct reduction (built once: pydantic validation is the cost)."""
    key = tuple(getattr(layout, k) for k in LAYER_FIELDS)
    hit = _LAYER_LAYOUTS.get(key)
    if hit is None:
        if len(_LAYER_LAYOUTS) > 4096:
            _LAYER_LAYOUTS.clear()
        hit = _LAYER_LAYOUTS[key] = Layout(**dict(zip(LAYER_FIELDS, key)))
    return hit


def layer_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> tuple[float, float]:
    """(activations one layer keeps for backward, its recompute / context-parallel working bytes) of one
    micro-batch (a MoE layer for a MoE model); ``layout`` reduced by ``layer_layout``."""
    return layer_activation_bytes(model, training, layout), layer_working_bytes(model, training, layout)


def pre_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> float:
    """Activations the first stage's leading dense layers (a MoE model's ``num_dense_layers``) keep,
    one micro-batch; ``layout`` reduced by ``layer_layout``."""
    k = model.num_dense_layers
    return k * layer_activation_bytes(model, training, layout, True) if k else 0.0


def post_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> tuple[float, float, float]:
    """(loss temporaries at the start of backward, at the end of forward, the allocator's cached block beside
    the first when the step frees the logits: memory.head_cache_bytes) of the last stage's head, one
    micro-batch; ``layout`` reduced by ``layer_layout``."""
    return (head_activation_bytes(model, training, layout), head_forward_bytes(model, training, layout),
            head_cache_bytes(model, training, layout))


@dataclass(frozen=True, slots=True)
class StepFrame:
    """What every stage of one step shares: micro-batches, stage runs, per-GPU parameter counts of a
    layer / the embedding / the head (after TP), a layer's bytes, the pipeline send (bytes)."""

    micro_batches: int
    runs: tuple[tuple[int, int, int], ...]  # (first stage, layers, stages) per run (``stage_runs``)
    in_flight: tuple[float, ...]  # micro-batches each stage holds at its peak
    counts: object  # planner.work.params.parameter_counts of the model
    layer_params: float  # one layer's parameters on one GPU, routed experts apart
    emb_params: float
    out_params: float
    lay_key: Layout  # ``layer_layout`` of the layout
    activation_bytes: float  # ``layer_bytes``
    working_bytes: float
    p2p_bytes: float  # ``pipeline_send_bytes`` of the activation
    p2p_gather_bytes: float
    shared: tuple  # key of the stage-record and stage-template caches (planner.work.stage_templates)


def step_frame(model: ModelSpec, training: TrainingSpec, layout: Layout) -> StepFrame:
    """The ``StepFrame`` of ``model`` under ``layout`` (the last one asked for is kept: a memory survivor's
    full step follows its memory check)."""
    last = stage_templates.FRAME
    if last and last[0][0] is model and last[0][1] is training and last[0][2] is layout:
        return last[0][3]
    pc, layer_params, emb_params, out_params, lay_key, key, runs = stage_templates.by_layout(_layout_part, model, layout)
    m = micro_batches_per_step(layout, training)
    act, work = stage_templates.by_identity(layer_bytes, model, training, lay_key)
    d = stage_templates.by_identity(dims, model, training, lay_key)  # dims reads tp, cp, sequence_parallel
    p2p, p2p_gather = pipeline_send_bytes(d.tokens * d.hidden * ACT_BYTES, training, layout)
    frame = StepFrame(m, runs, tuple(in_flight_per_stage(layout, m)), pc, layer_params, emb_params, out_params,
                      lay_key, act, work, p2p, p2p_gather, (id(model), id(training), m, key))
    last[:] = [(model, training, layout, frame)]  # keeps the specs alive, so the ids stay theirs
    return frame


def _layout_part(model: ModelSpec, layout: Layout) -> tuple:
    """The part of the StepFrame that reads no training: (parameter counts, layer / embedding / head
    parameters per GPU, ``layer_layout``, ``stage_templates.template_key``, stage runs)."""
    pc = stage_templates.model_parameter_counts(model)
    t = layout.tp
    layer_params = (pc.per_layer.attention + pc.per_layer.mlp - routed_expert_parameters(model)) / t \
        + pc.per_layer.norms  # routed experts: expert_parameters_per_rank
    emb_params = pc.embedding / t + pc.position_embedding + pc.embedding_norm
    out_params = (pc.output_projection or (pc.embedding if layout.pp > 1 else 0)) / t + pc.final_norm
    return (pc, layer_params, emb_params, out_params, layer_layout(layout), stage_templates.template_key(layout),
            tuple(stage_runs(stage_layer_counts(layout, model))))


def step_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> StepBytes:
    """The stage records of one step of ``model`` under ``layout`` (assumes check_layout passed): the
    memory of ``build_step``'s StepWork, without its op sets."""
    f = step_frame(model, training, layout)
    records: dict[tuple, StageBytes] = {}
    runs = []
    for i, n_layers, count in f.runs:
        kind = (n_layers, i == 0, i == layout.pp - 1)
        rec = records.get(kind)
        if rec is None:
            rec = records[kind] = stage_record(f, i, n_layers, model, training, layout)
        runs.append((rec, count))
    return StepBytes(f.micro_batches, tuple(runs), f.in_flight)


def stage_record(f: StepFrame, i: int, n_layers: int, model: ModelSpec, training: TrainingSpec,
                 layout: Layout) -> StageBytes:
    """The StageBytes of stage ``i`` holding ``n_layers`` layers (its in-flight count is filled in by
    ``at``); shared by layouts that differ only in schedule (planner.work.stage_templates)."""
    kind = ("bytes", n_layers, i == 0, i == layout.pp - 1)
    rec = stage_templates.get(f.shared, kind, model, training)
    if rec is None:
        rec = _stage_bytes(f, i, n_layers, model, training, layout)
        stage_templates.put(f.shared, kind, model, training, rec)
    return rec


def _stage_bytes(f: StepFrame, i, n_layers, model, training, layout) -> StageBytes:
    """``stage_record`` computed."""
    k = model.num_dense_layers if i == 0 else 0  # MoE: leading dense layers sit on stage 0 (check_layout)
    n_layers -= k
    pc = f.counts
    params = f.layer_params * n_layers
    experts = expert_parameters_per_rank(model, layout) * n_layers if model.is_moe else 0.0
    extra_act, fwd_end, dense_act, logits_cache = 0.0, 0.0, 0.0, 0.0
    if i == 0:
        dense_act = stage_templates.by_identity(pre_bytes, model, training, f.lay_key)
        params += f.emb_params
        if k:
            dl = pc.dense_layer
            params += k * ((dl.attention + dl.mlp) / layout.tp + dl.norms)
    if i == layout.pp - 1:
        extra_act, fwd_end, logits_cache = stage_templates.by_identity(post_bytes, model, training, f.lay_key)
        if layout.pp > 1:  # the loss runs inside the pipeline schedule, which frees no logits before backward
            logits_cache = 0.0
        params += f.out_params if (layout.pp > 1 or pc.output_projection) else pc.final_norm
        mtp, mtp_experts = mtp_params(model, training, layout)  # multi-token prediction (planner.work.mtp)
        params, experts = params + mtp, experts + mtp_experts
        dense_act += mtp_activation_bytes(model, training, f.lay_key)
    cache, saved = weight_copy_bytes(model, training, layout, n_layers, i == layout.pp - 1, dense_layers=k)
    recipe = training.recipe_spec
    states = sharded_state_bytes(params, training, layout)
    if experts:  # routed experts: states sharded over the expert-data-parallel group
        es = expert_state_bytes(experts, training, layout)
        states = type(states)(states.weights + es.weights, states.grads + es.grads, states.optimizer + es.optimizer)
    lin = layer_linear_params(model, layout)[0] if sharded_weights(layout) else 0.0
    root = (f.emb_params if i == 0 else 0.0) + (f.out_params if i == layout.pp - 1 else 0.0)
    gathered, zero3_working = held_bytes(params, lin * n_layers, f.layer_params, lin, root, training, layout)
    cache, saved = cache + gathered, saved + gathered  # gathered weights: forward end and backward (work/fsdp.py)
    copy_mb, copy_step = fsdp_copy_bytes(params, lin * n_layers, n_layers + (root > 0), training, layout)
    zero3_working += expert_zero3_working_bytes(model, training, layout)  # FSDP + EP (work.expert_states)
    buffers = 2 * f.p2p_bytes * (2 if layout.pp > 1 else 0)
    if grad_group_size(layout) > 1:  # gradient-reduction buckets (Megatron/DDP default ~40 MB, 2 in flight), never more
        buffers += 2 * min(40e6, params * grad_reduce_bytes_per_param(training))  # than the gradients
    sharded_opt = layout.effective_zero_stage >= 1 or training.distributed_optimizer
    opt_params = params / (shard_group_size(layout) if sharded_opt else 1) + expert_optimizer_params(experts, training, layout)
    states, act_held, off = apply_offload(states, params + experts, opt_params, f.activation_bytes * n_layers + dense_act,
                                          training)
    out_in_flight, out_held = pipeline_output_bytes(model, training, layout, i == layout.pp - 1, f.p2p_bytes,
                                                    f.micro_batches)
    act_held += out_in_flight  # stage outputs the schedule keeps: per micro-batch in flight, or to the step's end
    buffers += out_held
    updated = 0.0 if off.cpu_optimizer_params else opt_params
    loop_tensors = (optimizer_tensor_count(model, layout, n_layers, i == 0, i == layout.pp - 1,
                                           shard_group_size(layout) if sharded_opt else 1)
                    if updated and recipe.optimizer_loop_sync else 0)
    live_grads = recipe.grads_persist or f.micro_batches > 1  # gradients live while activations are held
    return StageBytes(
        index=i, layers=n_layers, params=params, optimizer_params=updated,
        weights_bytes=states.weights, grads_bytes=states.grads, optimizer_bytes=states.optimizer,
        activation_bytes_per_microbatch=act_held, in_flight=0.0,
        working_bytes=max(f.working_bytes, extra_act) + zero3_working, buffer_bytes=buffers,
        loss_cache_bytes=max(f.working_bytes, extra_act + logits_cache) - max(f.working_bytes, extra_act),
        weight_cache_bytes=cache, weight_saved_bytes=saved, forward_end_bytes=fwd_end,
        grads_in_backward=live_grads,
        optimizer_pass_bytes=optimizer_pass_bytes(states.grads, updated, training), optimizer_tensors=loop_tensors,
        optimizer_comm=sp_norm_grad_allreduce(model, training, layout, n_layers, i == 0, i == layout.pp - 1),
        optimizer_grad_copy_bytes=updated * optimizer_grad_copy_bytes_per_param(training), offload=off,
        expert_params=experts, fsdp_copy_bytes_per_microbatch=copy_mb, fsdp_copy_bytes_per_step=copy_step,
        fsdp_gathered_bytes=gathered,
        all_gather_pool_bytes=all_gather_pool_bytes(root, f.layer_params, lin, training, layout),
        grads_pool_bytes=states.grads if grads_in_reduce_pool(training, layout) and not live_grads else 0.0,
        pipeline_output_bytes_per_microbatch=out_in_flight, pipeline_output_held_bytes=out_held,
    )


def fsdp_copy_bytes(params: float, linear: float, units: int, training: TrainingSpec,
                    layout: Layout) -> tuple[float, float]:
    """(per micro-batch, per step) HBM bytes of copying ZeRO-3 / FSDP gathers into the unsharded parameters
    on the compute stream (work/fsdp.py ``copy_out_bytes``) for a stage of ``params`` parameters
    (``linear`` of them Linear weights) gathered as ``units`` blocks: a forward and a backward gather per
    micro-batch (``backward_gathers`` of the blocks), or one gather per step when the weights stay unsharded."""
    if not sharded_weights(layout):
        return 0.0, 0.0
    copy = copy_out_bytes(gathered_bytes(params, linear, training), training)
    if keeps_unsharded(training, layout):
        return 0.0, copy
    units = max(1, units)
    return copy * (1.0 + backward_gathers(units, training) / units), 0.0


def optimizer_pass_bytes(grads_bytes: float, optimizer_params: float, training: TrainingSpec) -> float:
    """HBM bytes the optimizer step moves besides the fused Adam kernel, per GPU: the memset of persistent
    gradient buffers (``grads_bytes``; Megatron ``zero_grad_buffer``, DeepSpeed's buffers), the fp32 copy of
    16-bit gradients an fp16 optimizer makes (read 16-bit, write fp32; ``optimizer_grad_copy_bytes_per_param``),
    the copy of the updated fp32 master shard into the 16-bit parameters (read master + write weight bytes per
    updated parameter; Megatron ``_copy_main_params_to_model_params``, DeepSpeed BF16_Optimizer), and the
    recipe's gradient-norm clipping passes over the gradients the optimizer updates from."""
    recipe = training.recipe_spec
    zero = grads_bytes if recipe.grads_persist else 0.0
    held = grad_bytes_per_param(training)
    grad_copy = optimizer_grad_copy_bytes_per_param(training)
    cast = optimizer_params * (held + grad_copy) if grad_copy else 0.0
    copy = optimizer_params * (recipe.master_bytes + recipe.weight_bytes) if recipe.master_bytes > 0 else 0.0
    clip = recipe.grad_clip_grad_passes * optimizer_params * (grad_copy or held)
    return zero + cast + copy + clip


def pipeline_send_bytes(activation_bytes: float, training: TrainingSpec, layout: Layout) -> tuple[float, float]:
    """(bytes one rank sends to the next stage, bytes its receiving tp group all-gathers) per micro-batch for
    an ``activation_bytes`` activation: 1/tp of it with sequence parallelism (already sharded); 1/tp and
    an all-gather of the whole under the recipe's scatter/gather p2p (Megatron-LM 2021/22, Narayanan et
    al. 2021 Sec. 4.1; DeepSpeed's partitioned pipe activations); else the whole tensor from every tp rank."""
    t = layout.tp
    if layout.sequence_parallel:
        return activation_bytes / t, 0.0
    if t > 1 and layout.pp > 1 and training.recipe_spec.p2p_scatter_gather:
        return activation_bytes / t, activation_bytes
    return activation_bytes, 0.0


def stage_runs(counts: list[int]) -> list[tuple[int, int, int]]:
    """(first stage, layers, stages) of each run of consecutive stages of one template: equal layer
    counts, the first and the last stage each alone (they hold the embedding / the head)."""
    out = []
    i = 0
    last = len(counts) - 1
    for n_layers, group in groupby(counts):
        count = len(list(group))
        for start, k in ((i, 1), (i + 1, count - 1)) if i == 0 else ((i, count),):
            if k and start + k - 1 == last and k > 1:  # the last stage leaves the run
                out += [(start, n_layers, k - 1), (last, n_layers, 1)]
            elif k:
                out.append((start, n_layers, k))
        i += count
    return out
