"""Run DeepSpeed's own ``DeepSpeedConfig`` (deepspeed 0.19.8) on exported ds_config.json files.

Runs in the framework environment (python fw_deepspeed.py SPEC OUT). DeepSpeedConfig takes the
data-parallel world size from the ``mpu`` object the launcher passes (deepspeed/runtime/config.py:
458-463; Megatron-DeepSpeed passes Megatron's mpu): the object below answers the plan's dp. One
patch: ``deepspeed.comm.get_rank`` -> 0, because no torch.distributed job is initialised here and
DeepSpeedConfig asks the rank first (config.py:456), falling back to world size 1 without it.
The pipeline engine's ZeRO assertion (runtime/pipe/engine.py:76-77) is evaluated with DeepSpeed's
own ZeroStageEnum on the parsed config, since a PipelineEngine needs a distributed job.
"""

from __future__ import annotations

import json
import sys


class DataParallelMPU:
    """The one mpu method DeepSpeedConfig calls: get_data_parallel_world_size()."""

    def __init__(self, dp: int):
        self.dp = dp

    def get_data_parallel_world_size(self) -> int:
        return self.dp


def check(path: str, dp: int, pp: int) -> dict:
    import deepspeed.runtime.config as C
    from deepspeed.runtime.config import DeepSpeedConfig
    from deepspeed.runtime.zero.config import ZeroStageEnum

    C.dist.get_rank = lambda *a, **k: 0  # no distributed job: rank 0 (see the module docstring)

    try:
        cfg = DeepSpeedConfig(path, mpu=DataParallelMPU(dp))
    except (AssertionError, ValueError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    if pp > 1 and not cfg.zero_optimization_stage < ZeroStageEnum.gradients:
        return {"ok": False, "error": "ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism"}
    return {"ok": True, "train_batch_size": cfg.train_batch_size,
            "micro": cfg.train_micro_batch_size_per_gpu, "accumulation": cfg.gradient_accumulation_steps,
            "zero_stage": int(cfg.zero_optimization_stage), "bf16": bool(cfg.bfloat16_config.enabled),
            "fp16": bool(cfg.float16_config.enabled), "world_size": cfg.world_size,
            "offload_optimizer": _device(cfg.zero_config.offload_optimizer),
            "offload_param": _device(cfg.zero_config.offload_param),
            "zero_cpu_offload": _zero_cpu_offload(cfg),
            "cpu_checkpointing": bool(cfg.activation_checkpointing_config.cpu_checkpointing)}


def _device(offload) -> str | None:
    """The parsed offload device ('cpu'), None when the section is absent."""
    return None if offload is None else str(getattr(offload.device, "value", offload.device))


def _zero_cpu_offload(cfg) -> bool:
    """DeepSpeedEngine.zero_cpu_offload (runtime/engine.py:1567-1570) on the parsed config: the flag
    the ZeRO optimizer gets, meaning optimizer state + gradients on the CPU (ZeRO-Offload)."""
    from deepspeed.runtime.zero.offload_config import OffloadDeviceEnum

    off = cfg.zero_config.offload_optimizer
    return off is not None and off.device == OffloadDeviceEnum.cpu


def run_all(spec_path: str, out_path: str) -> None:
    results = {}
    for item in json.load(open(spec_path)):
        try:
            results[item["dir"]] = check(item["dir"] + "/ds_config.json", item["dp"], item["pp"])
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            results[item["dir"]] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    json.dump(results, open(out_path, "w"), default=str)


if __name__ == "__main__":
    run_all(sys.argv[1], sys.argv[2])
