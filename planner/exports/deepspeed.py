"""DeepSpeed config for a plan (deepspeed 0.19.8 ``DeepSpeedConfig`` keys).

DeepSpeed's JSON holds batch, ZeRO, offload, precision and activation-checkpointing options. The
model code decides tensor parallelism, pipeline stages and what is recomputed; the launch script runs
the user's DeepSpeed training script (``TRAIN_SCRIPT``) with ``--deepspeed --deepspeed_config``, and the
header names the tp / pp / recompute that model code must use. DeepSpeedConfig gets the data-parallel
size from the launcher's mpu (deepspeed/runtime/config.py:458-463), which is why
``train_batch_size = micro * accumulation * dp`` (not the world size) holds.

No Megatron-DeepSpeed launcher is written: Megatron-DeepSpeed is not on PyPI, so CI cannot check its
arguments with its own parser (docs/exports.md).
"""

from __future__ import annotations

from ..frameworks import check_launchable
from ..frameworks.common import accumulation_steps
from ..specs import Layout, ModelSpec, TrainingSpec

FRAMEWORK = "deepspeed"


def deepspeed_config(training: TrainingSpec, layout: Layout, model: ModelSpec | None = None) -> dict:
    """DeepSpeed JSON config: batch sizes (train_batch_size = micro * accumulation * dp), ZeRO stage
    and its overlap, precision, activation-checkpointing options (keys of deepspeed/runtime/config.py
    and zero/config.py). ``model`` enables the launch-rule check (SpecError when DeepSpeed refuses)."""
    if model is not None:
        check_launchable(FRAMEWORK, model, training, layout, field="--export deepspeed")
    z = layout.effective_zero_stage
    zero: dict = {"stage": z}
    if z >= 1:
        # what was priced: ZeRO-3 gathers / reduce-scatters are prefetched under compute whatever the
        # recipe's overlap_dp_comm (planner/cost/analytic.py, zero3_exposed), as DeepSpeed runs stage 3 by
        # default (zero/config.py: overlap_comm defaults to true for stage 3); ZeRO-1/2 follow overlap_dp_comm.
        overlapped = z >= 3 or training.overlap_dp_comm
        zero.update(overlap_comm=overlapped and layout.dp > 1, contiguous_gradients=True, reduce_scatter=True)
    cfg: dict = {
        "train_batch_size": training.global_batch_size,
        "train_micro_batch_size_per_gpu": training.micro_batch_size,
        "gradient_accumulation_steps": accumulation_steps(layout, training),
        "zero_optimization": zero,
        "gradient_clipping": 1.0,
    }
    off = training.offload
    if off.optimizer:  # ZeRO-Offload: optimizer states and gradients on the host, DeepSpeedCPUAdam
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if off.params:  # ZeRO-Infinity parameter offload (stage 3)
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if training.precision == "fp16":
        cfg["fp16"] = {"enabled": True, "loss_scale": 0, "initial_scale_power": 16}
    else:
        cfg["bf16"] = {"enabled": True}
    if training.recompute != "none":
        cfg["activation_checkpointing"] = {"partition_activations": layout.tp > 1,
                                           "contiguous_memory_optimization": False,
                                           "cpu_checkpointing": off.activations}
    return cfg


def model_code_note(training: TrainingSpec, layout: Layout) -> str:
    """What the training script's model code must carry (DeepSpeed's JSON cannot): tp, pp, recompute."""
    return (f"model code: tensor parallel {layout.tp}, pipeline stages {layout.pp} (DeepSpeed PipelineModule, "
            f"1F1B), activation recompute {training.recompute}")
