"""One description of a training step: per pipeline stage, the ops of one micro-batch (forward,
input-grad, weight-grad, recompute), the pipeline transfers, the per-step data-parallel / ZeRO
communication, the optimizer work, and the bytes held (each stage's bytes are its record from
planner.work.step_bytes, which the search's memory scan builds alone). No times here (see planner.pricing).
"""

from __future__ import annotations

import functools

from ..specs import Layout, ModelSpec, TrainingSpec
from . import stage_templates
from .context import grad_group_size, resolve_cp_kind, shard_group_size
from .expert_states import expert_dp_comm
from .fsdp import backward_gathers, gathered_bytes, keeps_unsharded
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
from .memory import grad_bytes_per_param, grad_reduce_bytes_per_param, param_gather_bytes_per_param
from .moe import moe_note
from .mtp import mtp_forward
from .ops import Collective, Op
from .stage import EMPTY, OpSet, StageBytes, StageWork, StepWork, cached_property  # noqa: F401 - re-exported
from .step_bytes import (  # noqa: F401 - re-exported
    _LAYER_LAYOUTS,
    LAYER_FIELDS,
    layer_layout,
    optimizer_pass_bytes,
    pipeline_send_bytes,
    stage_record,
    step_bytes,
    step_frame,
)
from .zero3_tensors import per_tensor, tensor_dp_comm


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


def _shard_axis(layout: Layout) -> str:
    """The mesh axis ZeRO / FSDP shard over: dp, or dp_shard under hybrid sharding."""
    return "dp_shard" if layout.dp_shard and layout.dp_shard < layout.dp else "dp"


def _dp_comm(params: float, training: TrainingSpec, layout: Layout, units: int = 1, linear: float = 0.0):
    """Data-parallel collectives: (per micro-batch, per step), each over the dp or dp_shard axis.
    ZeRO-3 / FSDP gathers and reduce-scatters one sharded unit at a time: ``units`` calls per pass
    (one per layer plus one for the embedding / head the stage holds; Rajbhandari et al. 2020,
    arXiv 1910.02054, Sec. 7; Zhao et al. 2023, PyTorch FSDP, arXiv 2304.11277, Sec. 3.2); the backward
    gathers again the blocks the recipe freed after forward, and a stage whose weights stay unsharded
    across the step gathers once and reduce-scatters once per step (planner.work.fsdp), as FSDP's ZeRO-2
    (SHARD_GRAD_OP, a recipe with ``fsdp_sharding``) does per unit. ``linear``: the
    Linear weights among ``params`` (gathered as fp8 with ``training.fp8_all_gather``)."""
    if grad_group_size(layout) == 1:  # dp x cp ranks reduce gradients together (work/context.py)
        return (), ()
    grad_bytes = params * grad_reduce_bytes_per_param(training)
    gather_bytes = params * param_gather_bytes_per_param(training)
    stage = layout.effective_zero_stage
    if training.distributed_optimizer and stage == 0:
        stage = 1
    shard_axis = _shard_axis(layout)
    hybrid = shard_axis == "dp_shard" and stage >= 1

    def replicate(calls: int) -> tuple:
        """Hybrid sharding: the replicas all-reduce each unit's reduce-scattered shard right after its
        reduce-scatter, on their own stream (FSDP1 ``_reduce_grad``: ``dist.all_reduce(new_sharded_grad,
        group=state._inter_node_pg)`` on ``_all_reduce_stream`` per flat parameter; FSDP2 ``foreach_reduce``:
        ``all_reduce_stream.wait_stream(reduce_scatter_stream)`` then ``dist.all_reduce`` per parameter group;
        torch/distributed/fsdp), so the all-reduce follows the reduce-scatter's calls and phase."""
        if not hybrid:
            return ()
        return (Collective("grads.replica_allreduce", "all-reduce", "dp_replicate",
                           grad_bytes / shard_group_size(layout), "bwd_weight", calls),)
    if stage == 0:
        return (), (Collective("grads.allreduce", "all-reduce", "dp", grad_bytes, "bwd_weight"),)
    if stage in (1, 2):
        # FSDP's SHARD_GRAD_OP (ZeRO-2 as PyTorch runs it) gathers and reduce-scatters each FSDP unit's flat
        # parameter on its own (Zhao et al. 2023, arXiv 2304.11277, Sec. 3.2), each call paying the ring's latency;
        # DeepSpeed's and Megatron's bucketed reductions are priced as one call
        calls = units if training.recipe_spec.fsdp_sharding else 1
        return (), (
            Collective("grads.reduce_scatter", "reduce-scatter", shard_axis, grad_bytes, "bwd_weight", calls),
            *replicate(calls),
            Collective("params.allgather", "all-gather", shard_axis, gather_bytes, "fwd", calls),
        )
    gather_bytes = gathered_bytes(params, linear, training)
    if keeps_unsharded(training, layout):  # one gather under the step's first forward, one reduce-scatter
        return (), (Collective("grads.reduce_scatter", "reduce-scatter", shard_axis, grad_bytes, "bwd_weight", units),
                    *replicate(units),
                    Collective("params.allgather", "all-gather", shard_axis, gather_bytes, "fwd", units))
    again = backward_gathers(units, training)
    per_mb = (
        Collective("params.allgather.fwd", "all-gather", shard_axis, gather_bytes, "fwd", units),
        Collective("params.allgather.bwd", "all-gather", shard_axis, gather_bytes * again / units, "bwd_input",
                   max(1, round(again))),
        Collective("grads.reduce_scatter", "reduce-scatter", shard_axis, grad_bytes, "bwd_weight", units),
        *replicate(units),  # per micro-batch, as the reduce-scatter it follows
    )
    return per_mb, ()


def _stage_template(rec: StageBytes, layer: OpSet, model, training, layout, lay_key: Layout) -> StageWork:
    """The StageWork of the stage record ``rec`` (planner.work.step_bytes): its op sets (``layer`` per layer,
    the embedding on the first stage, the head on the last; ``lay_key``: ``layer_layout(layout)``) and
    its data-parallel collectives added to its bytes."""
    i, last = rec.index, layout.pp - 1
    pre = stage_templates.by_identity(_pre_work, model, training, lay_key) if i == 0 else EMPTY
    post = stage_templates.by_identity(_post_work, model, training, lay_key) if i == last else EMPTY
    linear = layer_linear_params(model, layout)[0] * rec.layers if training.fp8_all_gather else 0.0
    per_mb, per_step = _dp_comm(rec.params, training, layout, max(1, rec.layers + (i == 0 or i == last)), linear)
    if per_mb and per_tensor(training) and not model.is_moe:  # DeepSpeed's per-module fetch (work/zero3_tensors.py)
        per_mb, step_gather = tensor_dp_comm(model, training, layout, rec.layers, i == 0, i == last, _shard_axis(layout))
        per_step = per_step + step_gather
    if rec.expert_params:  # routed experts: reduced (ZeRO-3 / FSDP: also gathered) over expert data parallel
        e_mb, e_step = expert_dp_comm(rec.expert_params, training, layout, max(1, rec.layers))
        per_mb, per_step = per_mb + e_mb, per_step + e_step
    return StageWork.of(rec, layer=layer, pre=pre, post=post, per_microbatch_comm=per_mb, per_step_comm=per_step)


@functools.lru_cache(maxsize=4096)
def _pre_work(model: ModelSpec, training: TrainingSpec, layout: Layout) -> OpSet:
    """Op set of the first stage's blocks before its layers: the embedding and, for a MoE model, its
    ``num_dense_layers`` dense layers (their bytes: step_bytes.pre_bytes). The embedding reads the layout
    only through dims (tp, cp, sequence_parallel), so ``layout`` is reduced by ``layer_layout`` like the
    per-layer cache's key."""
    emb = embedding_forward(model, training, layout)
    emb_bwd = tuple(op for op in backward_of(emb) if not isinstance(op, Collective))
    pre = OpSet(tuple(emb), emb_bwd)
    k = model.num_dense_layers
    if not k:
        return pre
    dense = _layer_work(model, training, layout, dense=True)
    return OpSet(pre.forward + dense.forward * k, pre.backward_input + dense.backward_input * k,
                 dense.backward_weight * k, dense.recompute * k)


@functools.lru_cache(maxsize=4096)
def _post_work(model: ModelSpec, training: TrainingSpec, layout: Layout) -> OpSet:
    """Op set of the last stage's head (its bytes: step_bytes.post_bytes); ``layout`` reduced by
    ``layer_layout`` (the head reads tp, cp, sequence_parallel)."""
    head = head_forward(model, training, layout)
    mtp = mtp_forward(model, training, layout)  # DeepSeek-V3 multi-token prediction (planner.work.mtp)
    hb_in, hb_w = _split(backward_of(mtp) + _head_backward(model, training, layout, head))
    return OpSet(tuple(head + mtp), hb_in, hb_w)


@functools.lru_cache(maxsize=4096)
def _layer_work(model: ModelSpec, training: TrainingSpec, layout: Layout, accumulate_bytes: float = 0.0,
                dense: bool = False) -> OpSet:
    """Op set of one layer (a MoE layer for MoE models unless ``dense``; ``layout`` reduced by
    ``layer_layout``; its bytes: step_bytes.layer_bytes): it depends on the layout only through
    ``LAYER_FIELDS``, so the search and repeated estimates reuse it (more ops per layer do not cost
    more per estimate). The gradient-accumulation ops (the only part that depends on the micro-batch
    count, through ``accumulate_bytes``) come last in the backward, after the cached rest."""
    base = _layer_base(model, training, layout, dense)
    if not accumulate_bytes:
        return base
    _, tensors = layer_linear_params(model, layout, dense)
    acc_in, acc_w = _split(grad_accumulation_ops(accumulate_bytes, tensors))
    return OpSet(base.forward, base.backward_input + acc_in, base.backward_weight + acc_w, base.recompute)


@functools.lru_cache(maxsize=1024)
def _layer_base(model: ModelSpec, training: TrainingSpec, layout: Layout, dense: bool) -> OpSet:
    """``_layer_work`` without the gradient-accumulation ops (``_split`` keeps op order, so appending
    their split halves equals splitting the whole list)."""
    lf = layer_forward(model, training, layout, dense=dense)
    _, tensors = layer_linear_params(model, layout, dense)
    extras = layer_backward_extras(model, training, layout, dense=dense) + grad_accumulation_ops(0.0, tensors)
    lb_in, lb_w = _split(backward_of(lf) + extras)
    return OpSet(tuple(lf), lb_in, lb_w, tuple(layer_recompute(model, training, layout, dense=dense)))


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
    """``build_step`` computed: the stage records of ``step_bytes`` with their op sets."""
    f = step_frame(model, training, layout)
    m = f.micro_batches
    accumulate = 0.0
    if m > 1 and not training.grad_accumulation_fusion:  # per micro-batch, averaged over the step
        shard = layout.shard_degree if (layout.effective_zero_stage >= 2 or layout.fsdp) else 1
        accumulate = f.layer_params / shard * grad_bytes_per_param(training) * (m - 1) / m
    layer = stage_templates.by_identity(_layer_work, model, training, f.lay_key, accumulate)
    templates: dict[tuple[int, bool, bool], StageWork] = {}
    last = layout.pp - 1
    runs = []
    for i, n_layers, count in f.runs:
        kind = (n_layers, i == 0, i == last)
        template = templates.get(kind)
        if template is None:
            template = stage_templates.get(f.shared, kind, model, training)
            if template is None:  # structures that differ only in schedule share it (planner.work.stage_templates)
                template = _stage_template(stage_record(f, i, n_layers, model, training, layout), layer, model,
                                           training, layout, f.lay_key)
                stage_templates.put(f.shared, kind, model, training, template)
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
    return StepWork(model, training, layout, m, tuple(runs), f.in_flight, f.p2p_bytes, tuple(notes), f.p2p_gather_bytes)
