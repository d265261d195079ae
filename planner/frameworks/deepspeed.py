"""DeepSpeed layout rules (deepspeed 0.19.8; line numbers are of that release's sources).

DeepSpeed itself carries data parallelism, ZeRO and its pipeline engine; tensor parallelism comes
from the model code (Megatron-DeepSpeed), which the export writes beside the JSON when tp > 1.
"""

from __future__ import annotations

from ..specs import Layout, ModelSpec, TrainingSpec
from .common import Rule
from .offload import DEEPSPEED_OFFLOAD

PIPE = "deepspeed/runtime/pipe/engine.py"
CONFIG = "deepspeed/runtime/config.py"


def _pipeline_zero(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    z = layout.effective_zero_stage
    if layout.pp > 1 and z >= 2:
        return (f"ZeRO-{z} with pp({layout.pp}) > 1: the pipeline engine asserts 'ZeRO-2 and ZeRO-3 are "
                "incompatible with pipeline parallelism' (ZeRO-0/1 only)")
    return None


def _pipeline_schedule(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if layout.pp > 1 and layout.schedule != "1f1b":
        return (f"schedule {layout.schedule}: the pipeline engine runs one schedule, TrainSchedule "
                "(1F1B, deepspeed/runtime/pipe/schedule.py), without interleaving or zero bubble")
    return None


def _uneven(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if layout.pp > 1 and (layout.stage_layers is not None or model.num_layers % layout.pp):
        return (f"uneven pipeline stages ({model.num_layers} layers on pp({layout.pp})): PipelineModule "
                "partitions by partition_method ('uniform', 'parameters', 'type:...'), not by a given "
                "number of layers per stage")
    return None


def _hybrid(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if layout.effective_zero_stage == 3 and layout.dp_shard is not None and layout.dp_shard != layout.dp:
        return (f"hybrid ZeRO-3 sharding dp_shard({layout.dp_shard}) < dp({layout.dp}): 'MiCS ZeRO-3 sharding "
                "has been removed' (zero_optimization.mics_shard_size is refused)")
    return None


def _precision(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if training.precision == "fp8":
        return "fp8: the DeepSpeed config has fp16 and bf16 modes only (no fp8 training section)"
    return None


def _parallel_kinds(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if layout.cp > 1:
        return (f"cp({layout.cp}): DeepSpeed's sequence parallelism is Ulysses (all-to-all over heads), "
                "not ring context parallelism; the layout would change")
    if layout.ep > 1:
        return f"ep({layout.ep}): expert parallelism is set in the model code (deepspeed.moe.layer.MoE), not the config"
    return None


def _recompute(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if training.recompute == "op":
        return ("recompute op is torchtitan's per-op save list; DeepSpeed checkpoints whole layers "
                "(activation_checkpointing) or, through Megatron-DeepSpeed, the attention core: use full or selective")
    return None


DEEPSPEED_RULES = (
    Rule("pipeline-zero", f"{PIPE}:76-77", _pipeline_zero),
    Rule("pipeline-schedule", f"{PIPE}:501", _pipeline_schedule),
    Rule("uneven-stages", "deepspeed/runtime/pipe/module.py:396-440", _uneven),
    Rule("hybrid-zero3", f"{CONFIG}:120-121", _hybrid),
    Rule("precision", f"{CONFIG} (fp16/bf16 sections only)", _precision),
    Rule("recompute", "deepspeed/runtime/activation_checkpointing/checkpointing.py (whole-module checkpoints)",
         _recompute),
    Rule("parallel-kinds", "deepspeed/moe/layer.py; deepspeed/sequence/layer.py", _parallel_kinds),
    DEEPSPEED_OFFLOAD,
)
