"""DeepSpeed config for a plan (deepspeed 0.19.8 ``DeepSpeedConfig`` keys), and the launcher that
carries the model, tp, pp and recompute: Megatron-DeepSpeed's ``pretrain_gpt.py`` arguments.

DeepSpeed's JSON holds batch, ZeRO and precision. The model code decides tensor parallelism,
pipeline stages and what is recomputed, so the launch script runs Megatron-DeepSpeed with
Megatron-style arguments and ``--deepspeed --deepspeed_config ds_config.json``; DeepSpeedConfig then
gets the data-parallel size from Megatron's mpu (deepspeed/runtime/config.py:458-463), which is
why ``train_batch_size = micro * accumulation * dp`` (not the world size) holds.
"""

from __future__ import annotations

from ..frameworks import VERSIONS, check_launchable
from ..frameworks.common import accumulation_steps
from ..specs import Layout, ModelSpec, TrainingSpec
from .megatron import model_args, shell_array

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


def launcher_args(model: ModelSpec, training: TrainingSpec, layout: Layout) -> list[str]:
    """Megatron-DeepSpeed arguments: the model, tp/pp, batch, recompute granularity, precision."""
    a = model_args(model, training, layout.tp)
    a += ["--tensor-model-parallel-size", str(layout.tp), "--pipeline-model-parallel-size", str(layout.pp)]
    if layout.pp == 1:
        a.append("--no-pipeline-parallel")
    if layout.sequence_parallel:
        a.append("--sequence-parallel")
    a += ["--micro-batch-size", str(training.micro_batch_size),
          "--global-batch-size", str(training.global_batch_size)]
    if training.recompute == "full":
        a += ["--recompute-granularity", "full", "--recompute-method", "uniform", "--checkpoint-activations"]
    elif training.recompute == "selective":
        a += ["--recompute-granularity", "selective"]
    if training.flash_attention:
        a.append("--use-flash-attn-v2")
    a.append("--fp16" if training.precision == "fp16" else "--bf16")
    a += ["--deepspeed", "--deepspeed_config", "ds_config.json", "--zero-stage", str(layout.effective_zero_stage)]
    if training.recompute != "none":
        a.append("--deepspeed-activation-checkpointing")
    if training.offload.optimizer:  # ZeRO-Offload refuses a GPU client optimizer (engine.py:2342-2346)
        a.append("--cpu-optimizer")
    if training.offload.activations:  # passed as checkpoint_in_cpu to deepspeed.checkpointing.configure
        a.append("--checkpoint-in-cpu")
    return a


def launcher_text(model: ModelSpec, training: TrainingSpec, layout: Layout, header: str) -> str:
    """``MDS_ARGS`` for Megatron-DeepSpeed (the launcher of the DeepSpeed export)."""
    deepspeed_config(training, layout, model)  # refuses first, with DeepSpeed's reason
    lines = [f"# {header}", f"# target: Megatron-DeepSpeed pretrain_gpt.py on {VERSIONS[FRAMEWORK]}",
             "# (DeepSpeed carries dp/ZeRO/pipeline engine; the Megatron model code carries tp and recompute)"]
    if layout.tp > 1:
        lines.append("export CUDA_DEVICE_MAX_CONNECTIONS=1")
    lines += shell_array("MDS_ARGS", launcher_args(model, training, layout))
    return "\n".join(lines) + "\n"
