"""One description of a training step: per pipeline stage, the ops of one micro-batch (forward,
input-grad, weight-grad, recompute), the pipeline transfers, the per-step data-parallel / ZeRO
communication, the optimizer work, and the bytes held. No times here (see planner.pricing).
"""

from __future__ import annotations

import functools
from itertools import groupby

from ..specs import Layout, ModelSpec, TrainingSpec, micro_batches_per_step, stage_layer_counts
from . import stage_templates
from .context import grad_group_size, resolve_cp_kind, shard_group_size
from .expert_states import (
    expert_dp_comm,
    expert_optimizer_params,
    expert_state_bytes,
    routed_expert_parameters,
)
from .kernels import grad_accumulation_ops
from .layer import (
    ACT_BYTES,
    backward_of,
    dims,
    embedding_forward,
    head_forward,
    layer_backward_extras,
    layer_forward,
    layer_linear_params,
    layer_recompute,
)
from .memory import (
    grad_bytes_per_param,
    grad_reduce_bytes_per_param,
    head_activation_bytes,
    head_forward_bytes,
    in_flight_per_stage,
    layer_activation_bytes,
    layer_working_bytes,
    optimizer_grad_copy_bytes_per_param,
    param_gather_bytes_per_param,
    sharded_state_bytes,
    weight_copy_bytes,
)
from .moe import expert_parameters_per_rank, moe_note
from .offload import apply_offload
from .ops import Collective, Op
from .stage import EMPTY, OpSet, StageWork, StepWork, cached_property  # noqa: F401 - re-exported


def _split(ops: list[Op]) -> tuple[tuple[Op, ...], tuple[Op, ...]]:
    """(input-grad and other backward ops, weight-grad GEMMs)."""
    return (
        tuple(op for op in ops if op.phase != "bwd_weight"),
        tuple(op for op in ops if op.phase == "bwd_weight"),
    )


def _head_backward(model, training, layout, fwd: list[Op]) -> list[Op]:
    ops = [op for op in backward_of(fwd) if not (isinstance(op, Collective) and op.kind == "all-reduce")]
    d = dims(model, training, layout)
    if d.tp > 1 and not d.sequence_parallel:  # conjugate of the identity at the head input
        ops.append(Collective("head.allreduce.bwd", "all-reduce", "tp", d.tokens * d.hidden * ACT_BYTES,
                              "bwd_input"))
    return ops


def _dp_comm(params: float, training: TrainingSpec, layout: Layout, units: int = 1):
    """Data-parallel collectives: (per micro-batch, per step), each over the dp or dp_shard axis.
    ZeRO-3 / FSDP gathers and reduce-scatters one sharded unit at a time: ``units`` calls per pass
    (one per layer plus one for the embedding / head the stage holds; Rajbhandari et al. 2020,
    arXiv 1910.02054, Sec. 7; Zhao et al. 2023, PyTorch FSDP, arXiv 2304.11277, Sec. 3.2)."""
    if grad_group_size(layout) == 1:  # dp x cp ranks reduce gradients together (work/context.py)
        return (), ()
    grad_bytes = params * grad_reduce_bytes_per_param(training)
    gather_bytes = params * param_gather_bytes_per_param(training)
    stage = layout.effective_zero_stage
    if training.distributed_optimizer and stage == 0:
        stage = 1
    shard_axis = "dp_shard" if layout.dp_shard and layout.dp_shard < layout.dp else "dp"
    replicate = []
    if shard_axis == "dp_shard" and stage >= 1:  # hybrid sharding: replicas all-reduce their shard
        replicate.append(Collective("grads.replica_allreduce", "all-reduce", "dp_replicate",
                                    grad_bytes / shard_group_size(layout), "bwd_weight"))
    if stage == 0:
        return (), (Collective("grads.allreduce", "all-reduce", "dp", grad_bytes, "bwd_weight"),)
    if stage in (1, 2):
        return (), (
            Collective("grads.reduce_scatter", "reduce-scatter", shard_axis, grad_bytes, "bwd_weight"),
            *replicate,
            Collective("params.allgather", "all-gather", shard_axis, gather_bytes, "fwd"),
        )
    per_mb = (
        Collective("params.allgather.fwd", "all-gather", shard_axis, gather_bytes, "fwd", units),
        Collective("params.allgather.bwd", "all-gather", shard_axis, gather_bytes, "bwd_input", units),
        Collective("grads.reduce_scatter", "reduce-scatter", shard_axis, grad_bytes, "bwd_weight", units),
    )
    return per_mb, tuple(replicate)


def _stage_template(i, n_layers, layer, model, training, layout, pc, layer_params, emb_params, out_params,
                    act, work_bytes, p2p, m, lay_key=None) -> StageWork:
    """StageWork of stage ``i`` (index and in-flight count are filled in by the caller; ``lay_key``:
    ``layer_layout(layout)`` when the caller has it)."""
    lay_key = layer_layout(layout) if lay_key is None else lay_key
    k = model.num_dense_layers if i == 0 else 0  # MoE: leading dense layers sit on stage 0 (check_layout)
    n_layers -= k
    params = layer_params * n_layers
    experts = expert_parameters_per_rank(model, layout) * n_layers if model.is_moe else 0.0
    pre, post, extra_act, fwd_end, dense_act = EMPTY, EMPTY, 0.0, 0.0, 0.0
    if i == 0:
        pre, dense_act = stage_templates.by_identity(_pre_work, model, training, lay_key)
        params += emb_params
        if k:
            dl = pc.dense_layer
            params += k * ((dl.attention + dl.mlp) / layout.tp + dl.norms)
    if i == layout.pp - 1:
        post, extra_act, fwd_end = stage_templates.by_identity(_post_work, model, training, lay_key)
        params += out_params if (layout.pp > 1 or pc.output_projection) else pc.final_norm
    cache, saved = weight_copy_bytes(model, training, layout, n_layers, i == layout.pp - 1, dense_layers=k)
    recipe = training.recipe_spec
    states = sharded_state_bytes(params, training, layout)
    per_mb, per_step = _dp_comm(params, training, layout, max(1, n_layers + (i == 0 or i == layout.pp - 1)))
    if experts:  # routed experts: states sharded and gradients reduced over the expert-data-parallel group
        es = expert_state_bytes(experts, training, layout)
        states = type(states)(states.weights + es.weights, states.grads + es.grads, states.optimizer + es.optimizer)
        per_step += expert_dp_comm(experts, training, layout)
    zero3_working = 0.0
    if layout.effective_zero_stage == 3 and grad_group_size(layout) > 1:
        zero3_working = 2 * layer_params * param_gather_bytes_per_param(training)  # current + prefetched
    buffers = 2 * p2p * (2 if layout.pp > 1 else 0)
    if grad_group_size(layout) > 1:  # gradient-reduction buckets (Megatron/DDP default ~40 MB, 2 in flight), never more
        buffers += 2 * min(40e6, params * grad_reduce_bytes_per_param(training))  # than the gradients
    sharded_opt = layout.effective_zero_stage >= 1 or training.distributed_optimizer
    opt_params = params / (shard_group_size(layout) if sharded_opt else 1) + expert_optimizer_params(experts, training, layout)
    states, act_held, off = apply_offload(states, params + experts, opt_params, act * n_layers + dense_act, training)
    return StageWork(
        index=i, layers=n_layers, layer=layer, pre=pre, post=post, params=params,
        per_microbatch_comm=per_mb, per_step_comm=per_step,
        optimizer_params=0.0 if off.cpu_optimizer_params else opt_params,
        weights_bytes=states.weights, grads_bytes=states.grads, optimizer_bytes=states.optimizer,
        activation_bytes_per_microbatch=act_held, in_flight=0.0,
        working_bytes=max(work_bytes, extra_act) + zero3_working, buffer_bytes=buffers,
        weight_cache_bytes=cache, weight_saved_bytes=saved, forward_end_bytes=fwd_end,
        grads_in_backward=recipe.grads_persist or m > 1,
        optimizer_pass_bytes=optimizer_pass_bytes(states.grads, 0.0 if off.cpu_optimizer_params else opt_params,
                                                  training),
        optimizer_grad_copy_bytes=(0.0 if off.cpu_optimizer_params else opt_params)
        * optimizer_grad_copy_bytes_per_param(training),
        offload=off,
    )


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


#: The Layout fields one layer's ops and bytes read (planner.work.layer / moe / mla / context / memory);
#: the per-layer cache below is keyed by exactly these, so a new field the layer reads must join here.
LAYER_FIELDS = ("tp", "cp", "cp_kind", "sequence_parallel", "ep", "etp")


_LAYER_LAYOUTS: dict[tuple, Layout] = {}


def layer_layout(layout: Layout) -> Layout:
    """``layout`` reduced to ``LAYER_FIELDS`` (the key of the per-layer op-set cache); one Layout
    object per distinct reduction (built once: pydantic validation is the cost)."""
    key = tuple(getattr(layout, k) for k in LAYER_FIELDS)
    hit = _LAYER_LAYOUTS.get(key)
    if hit is None:
        if len(_LAYER_LAYOUTS) > 4096:
            _LAYER_LAYOUTS.clear()
        hit = _LAYER_LAYOUTS[key] = Layout(**dict(zip(LAYER_FIELDS, key)))
    return hit


@functools.lru_cache(maxsize=4096)
def _pre_work(model: ModelSpec, training: TrainingSpec, layout: Layout) -> tuple[OpSet, float]:
    """(op set, activation bytes of the leading dense layers) of the first stage's blocks before its
    layers: the embedding and, for a MoE model, its ``num_dense_layers`` dense layers. The embedding
    reads the layout only through dims (tp, cp, sequence_parallel), so ``layout`` is reduced by
    ``layer_layout`` like the per-layer cache's key."""
    emb = embedding_forward(model, training, layout)
    emb_bwd = tuple(op for op in backward_of(emb) if not isinstance(op, Collective))
    pre = OpSet(tuple(emb), emb_bwd)
    k = model.num_dense_layers
    if not k:
        return pre, 0.0
    dense, dense_layer_act, _ = _layer_work(model, training, layout, dense=True)
    pre = OpSet(pre.forward + dense.forward * k, pre.backward_input + dense.backward_input * k,
                dense.backward_weight * k, dense.recompute * k)
    return pre, k * dense_layer_act


@functools.lru_cache(maxsize=4096)
def _post_work(model: ModelSpec, training: TrainingSpec, layout: Layout) -> tuple[OpSet, float, float]:
    """(op set, loss temporaries at the start of backward, at the end of forward; bytes) of the last
    stage's head; ``layout`` reduced by ``layer_layout`` (the head reads tp, cp, sequence_parallel)."""
    head = head_forward(model, training, layout)
    hb_in, hb_w = _split(_head_backward(model, training, layout, head))
    return (OpSet(tuple(head), hb_in, hb_w), head_activation_bytes(model, training, layout),
            head_forward_bytes(model, training, layout))


@functools.lru_cache(maxsize=4096)
def _layer_work(model: ModelSpec, training: TrainingSpec, layout: Layout, accumulate_bytes: float = 0.0,
                dense: bool = False) -> tuple[OpSet, float, float]:
    """(op set, activation bytes, recompute working bytes) of one layer (a MoE layer for MoE models
    unless ``dense``; ``layout`` reduced by ``layer_layout``): they depend on the layout only through
    ``LAYER_FIELDS``, so the search and repeated estimates reuse them (more ops per layer do not cost
    more per estimate). The gradient-accumulation ops (the only part that depends on the micro-batch
    count, through ``accumulate_bytes``) come last in the backward, after the cached rest."""
    base, act, work = _layer_base(model, training, layout, dense)
    if not accumulate_bytes:
        return base, act, work
    _, tensors = layer_linear_params(model, layout, dense)
    acc_in, acc_w = _split(grad_accumulation_ops(accumulate_bytes, tensors))
    layer = OpSet(base.forward, base.backward_input + acc_in, base.backward_weight + acc_w, base.recompute)
    return layer, act, work


@functools.lru_cache(maxsize=1024)
def _layer_base(model: ModelSpec, training: TrainingSpec, layout: Layout, dense: bool) -> tuple[OpSet, float, float]:
    """``_layer_work`` without the gradient-accumulation ops (``_split`` keeps op order, so appending
    their split halves equals splitting the whole list)."""
    lf = layer_forward(model, training, layout, dense=dense)
    _, tensors = layer_linear_params(model, layout, dense)
    extras = layer_backward_extras(model, training, layout, dense=dense) + grad_accumulation_ops(0.0, tensors)
    lb_in, lb_w = _split(backward_of(lf) + extras)
    layer = OpSet(tuple(lf), lb_in, lb_w, tuple(layer_recompute(model, training, layout, dense=dense)))
    return layer, layer_activation_bytes(model, training, layout, dense), layer_working_bytes(model, training, layout)


#: the steps built last, by the identity of their (frozen) specs: repeated estimates of one plan (what-if
#: sweeps over hardware, the bench) reuse its step, as the search prices the step its memory check built
_RECENT: dict[tuple[int, int, int], tuple[ModelSpec, TrainingSpec, Layout, StepWork]] = {}
_RECENT_MAX = 16


def build_step(model: ModelSpec, training: TrainingSpec, layout: Layout) -> StepWork:
    """Describe one optimizer step of ``model`` under ``layout`` (assumes check_layout passed)."""
    key = (id(model), id(training), id(layout))
    hit = _RECENT.get(key)
    if hit is not None and hit[0] is model and hit[1] is training and hit[2] is layout:
        return hit[3]
    step = _build_step(model, training, layout)
    if len(_RECENT) >= _RECENT_MAX:
        _RECENT.clear()
    _RECENT[key] = (model, training, layout, step)  # keeps the specs alive, so the ids stay theirs
    return step


def _build_step(model: ModelSpec, training: TrainingSpec, layout: Layout) -> StepWork:
    """``build_step`` computed."""
    m = micro_batches_per_step(layout, training)
    counts = stage_layer_counts(layout, model)
    pc = stage_templates.model_parameter_counts(model)
    t = layout.tp
    layer_params = (pc.per_layer.attention + pc.per_layer.mlp - routed_expert_parameters(model)) / t \
        + pc.per_layer.norms  # routed experts: expert_parameters_per_rank
    emb_params = pc.embedding / t + pc.position_embedding + pc.embedding_norm
    out_params = (pc.output_projection or (pc.embedding if layout.pp > 1 else 0)) / t + pc.final_norm

    accumulate = 0.0
    if m > 1 and not training.grad_accumulation_fusion:  # per micro-batch, averaged over the step
        shard = layout.shard_degree if (layout.effective_zero_stage >= 2 or layout.fsdp) else 1
        accumulate = layer_params / shard * grad_bytes_per_param(training) * (m - 1) / m
    lay_key = layer_layout(layout)
    layer, act, work_bytes = stage_templates.by_identity(_layer_work, model, training, lay_key, accumulate)
    d = dims(model, training, layout)
    p2p, p2p_gather = pipeline_send_bytes(d.tokens * d.hidden * ACT_BYTES, training, layout)
    templates: dict[tuple[int, bool, bool], StageWork] = {}
    last = layout.pp - 1
    runs = []
    shared = (id(model), id(training), m, stage_templates.template_key(layout))
    for i, n_layers, count in _stage_runs(counts):
        kind = (n_layers, i == 0, i == last)
        template = templates.get(kind)
        if template is None:
            template = stage_templates.get(shared, kind, model, training)
            if template is None:  # structures that differ only in schedule share it (planner.work.stage_templates)
                template = _stage_template(i, n_layers, layer, model, training, layout, pc, layer_params, emb_params,
                                           out_params, act, work_bytes, p2p, m, lay_key)
                stage_templates.put(shared, kind, model, training, template)
            templates[kind] = template
        runs.append((template, count))
    notes = []
    if layout.cp > 1:
        notes.append(f"cp({layout.cp}) {resolve_cp_kind(layout, training)} attention over 2*cp load-balanced chunks; "
                     f"gradients reduced over dp x cp = {grad_group_size(layout)} ranks")
    off = runs[0][0].offload
    if training.offload.any:
        d2h, h2d = off.per_step_bytes(m)
        notes.append(f"offload {training.offload.describe()}: {off.host_bytes / 2**30:.1f} GiB of states per GPU in "
                     f"host memory; per step {d2h / 1e9:.1f} GB to the host and {h2d / 1e9:.1f} GB back per GPU, CPU "
                     f"Adam over {off.cpu_optimizer_params / 1e9:.2f}B parameters (stage 0)")
    if model.is_moe:
        notes.append(moe_note(model, training, layout))
    return StepWork(model, training, layout, m, tuple(runs), tuple(in_flight_per_stage(layout, m)), p2p, tuple(notes),
                    p2p_gather)


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


def _stage_runs(counts: list[int]) -> list[tuple[int, int, int]]:
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
