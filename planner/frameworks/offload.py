"""CPU-offload rules of the export targets (the pinned versions of planner.frameworks.VERSIONS).

One source of truth for what a framework can offload: the kinds and their structural rules are
``planner.work.offload.RECIPE_OFFLOAD`` / ``check_offload`` of the framework's own recipe
(``FRAMEWORK_RECIPE``); on top of them, what the framework's code adds:

- Megatron-Core ``--optimizer-cpu-offload`` (HybridDeviceOptimizer) needs
  ``--use-precision-aware-optimizer`` (megatron/training/arguments.py:1803-1807), which needs the
  distributed optimizer (megatron/core/optimizer/optimizer_config.py:430-436): with dp > 1 that
  shards the optimizer state, i.e. ZeRO-1 at least.
- DeepSpeed ``offload_optimizer`` is consumed only by the ZeRO optimizers
  (deepspeed/runtime/engine.py:2296-2358: ZeRO stage >= 1), and it accumulates the gradients on the
  CPU every micro-batch (runtime/zero/stage_1_and_2.py:1809, ``async_accumulate_grad_in_cpu_via_gpu``):
  optimizer offload there is optimizer + gradients.
- torchtitan ``training.enable_cpu_offload`` (torchtitan/config/configs.py:61-64) is FSDP2's
  ``CPUOffloadPolicy``: parameters, gradients and optimizer state together (RECIPE_OFFLOAD).
"""

from __future__ import annotations

from ..errors import SpecError
from ..specs import Layout, ModelSpec, TrainingSpec
from ..work.offload import check_offload, offload_kinds
from .common import Rule

#: The recipe (hwprofiles/recipes, canonical name) whose offload kinds a framework expresses.
FRAMEWORK_RECIPE = {"megatron": "megatron-lm", "deepspeed": "deepspeed", "torchtitan": "torchtitan"}
KINDS = ("optimizer", "gradients", "params", "activations")


def _recipe_reason(framework: str, training: TrainingSpec, layout: Layout) -> str | None:
    """Why the framework's recipe cannot express ``training.offload`` (offload_kinds, check_offload)."""
    off = training.offload
    allowed = offload_kinds(training.replace(recipe=FRAMEWORK_RECIPE[framework]))
    missing = [k for k in KINDS if getattr(off, k) and k not in allowed]
    if missing:
        return f"{off.describe()}: cannot offload {', '.join(missing)}; it offloads {', '.join(allowed)} only"
    try:
        check_offload(training.replace(recipe=FRAMEWORK_RECIPE[framework]), layout)
    except SpecError as exc:
        return f"offload {off.describe()}: {str(exc).split(': ', 1)[-1]}"
    return None


def _megatron(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if not training.offload.any:
        return None
    reason = _recipe_reason("megatron", training, layout)
    if reason:
        return reason + " (--optimizer-cpu-offload: fp32 master weights and Adam moments, CPU Adam)"
    if layout.dp > 1 and layout.effective_zero_stage == 0 and not training.distributed_optimizer:
        return ("--optimizer-cpu-offload needs --use-precision-aware-optimizer, which needs the distributed "
                f"optimizer: with dp({layout.dp}) > 1 that shards the optimizer state (ZeRO-1), not the plan's ZeRO-0")
    return None


def _deepspeed(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    off = training.offload
    if not off.any:
        return None
    reason = _recipe_reason("deepspeed", training, layout)
    if reason:
        return reason
    if layout.effective_zero_stage == 0:
        return (f"offload {off.describe()} with ZeRO-0: zero_optimization.offload_optimizer is used only by the "
                "ZeRO optimizers (stage 1, 2 or 3; ZeRO-Offload)")
    if off.optimizer and not off.gradients:
        return (f"offload {off.describe()}: offload_optimizer also accumulates the gradients on the CPU every "
                "micro-batch (async_accumulate_grad_in_cpu_via_gpu), i.e. off:opt+grad; optimizer-only offload "
                "is Megatron-Core's")
    return None


def _torchtitan(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if not training.offload.any:
        return None
    return _recipe_reason("torchtitan", training, layout)


MEGATRON_OFFLOAD = Rule("offload", "megatron/training/arguments.py:1803-1807; "
                        "megatron/core/optimizer/optimizer_config.py:430-436", _megatron)
DEEPSPEED_OFFLOAD = Rule("offload", "deepspeed/runtime/engine.py:2296-2358; "
                         "deepspeed/runtime/zero/stage_1_and_2.py:1809", _deepspeed)
TORCHTITAN_OFFLOAD = Rule("offload", "torchtitan/config/configs.py:61-64 (enable_cpu_offload: FSDP2 "
                          "CPUOffloadPolicy, torchtitan/distributed/fsdp.py:173-174)", _torchtitan)
