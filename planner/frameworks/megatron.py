"""Megatron-LM / Megatron-Core layout rules (megatron-core 0.19.2; line numbers are of that wheel's
megatron/training/arguments.py and megatron/core/pipeline_parallel/schedules.py).

The interleaved micro-batch rule fires only at the first step (schedules.py), not in
``validate_args``; the others are asserts of ``validate_args``.
"""

from __future__ import annotations

from ..specs import Layout, ModelSpec, TrainingSpec
from .common import Rule, micro_batches, virtual_stage_layers
from .offload import MEGATRON_OFFLOAD

ARGS = "megatron/training/arguments.py"
SCHED = "megatron/core/pipeline_parallel/schedules.py"


def _schedule(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if layout.pp > 1 and layout.schedule in ("gpipe", "zb-h1"):
        name = {"gpipe": "GPipe", "zb-h1": "zero-bubble ZB-H1"}[layout.schedule]
        return (f"schedule {layout.schedule}: Megatron-Core runs 1F1B or interleaved 1F1B only "
                f"(get_forward_backward_func), no {name}")
    return None


def _interleaved_microbatches(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if layout.vpp == 1:
        return None
    m = micro_batches(layout, training)
    # microbatch_group_size_per_vp_stage defaults to pp (core/model_parallel_config.py:567-568); the
    # schedule needs pp <= group <= M and M % group == 0 or >= pp, i.e. M % pp == 0 and M >= pp.
    if m < layout.pp or m % layout.pp:
        return (f"interleaved schedule with micro_batches({m}) % pp({layout.pp}) = {m % layout.pp} != 0 "
                f"(or micro_batches < pp): Megatron raises at the first step")
    return None


def _interleaved_pp(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if layout.vpp > 1 and layout.pp <= 2:
        return (f"interleaved schedule with pp({layout.pp}) <= 2 needs --overlap-p2p-communication, which "
                "the plan does not price")
    return None


def _virtual_stages(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    # an explicit layout string may leave a virtual stage to the MTP modules and the loss ('Et|(tt|)*30mL'):
    # Megatron's PipelineParallelLayerLayout.validate_layer_layout checks it (planner.specs.pipeline_layout)
    if layout.vpp > 1 and layout.pipeline_layout is None and min(virtual_stage_layers(layout, model)) < 1:
        return (f"vpp({layout.vpp}) leaves a virtual pipeline stage without a transformer layer "
                "(a stage of --pipeline-model-parallel-layout needs a layer)")
    return None


def _zero(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    # ZeRO-1 = --use-distributed-optimizer; ZeRO-2/3 = Megatron-FSDP (--use-megatron-fsdp with
    # --data-parallel-sharding-strategy optim_grads / optim_grads_params, arguments.py:3023-3025),
    # which unlike --use-torch-fsdp2 (arguments.py:997-1016) takes pp > 1, tied embeddings and fp16.
    if layout.effective_zero_stage >= 2 and layout.dp_shard is not None and layout.dp_shard != layout.dp:
        return (f"hybrid sharding dp_shard({layout.dp_shard}) < dp({layout.dp}): the export shards over every "
                "data-parallel rank (Megatron-FSDP's outer data-parallel dimension is not planned)")
    return None


def _a2a_overlap(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if not training.moe_a2a_overlap:
        return None
    if layout.ep == 1:
        return "--overlap-moe-expert-parallel-comm needs expert parallelism (ep > 1)"
    if layout.pp > 1 and layout.vpp == 1:
        return "--overlap-moe-expert-parallel-comm with pp > 1 needs a virtual pipeline (vpp > 1)"
    if training.recompute == "full":
        return "--overlap-moe-expert-parallel-comm refuses full recomputation"
    if training.moe_shared_expert_overlap:
        return "--overlap-moe-expert-parallel-comm refuses --moe-shared-expert-overlap"
    if training.mtp_layers > 1:
        return f"--overlap-moe-expert-parallel-comm supports at most one MTP layer, not {training.mtp_layers}"
    return None


def _model(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if model.position_kind == "alibi":
        return "ALiBi positions: Megatron-Core GPT has learned_absolute, rope, mrope, yarn or none"
    if model.ffn_kind == "relu":
        return "a ReLU FFN: Megatron-Core GPT has GeLU, SwiGLU or squared ReLU"
    if model.ffn_kind == "geglu":
        return "a GeGLU FFN: Megatron-Core GPT's gated FFN option is --swiglu (SiLU gate) only"
    if model.embedding_norm:
        return "a norm after the embedding (BLOOM): Megatron-Core GPT has none"
    return None


MEGATRON_RULES = (
    Rule("schedule", f"{SCHED}:148-162", _schedule),
    Rule("interleaved-microbatches", f"{SCHED}:1133-1153", _interleaved_microbatches),
    Rule("interleaved-pp", f"{ARGS}:963-976", _interleaved_pp),
    Rule("virtual-stages", f"{ARGS}:907-918", _virtual_stages),
    Rule("zero", f"{ARGS}:1100-1147", _zero),
    Rule("a2a-overlap", "megatron/core/transformer/transformer_config.py:2669-2712", _a2a_overlap),
    Rule("model", f"{ARGS}:2195-2380", _model),
    MEGATRON_OFFLOAD,
)
