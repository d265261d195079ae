"""Run torchtitan's own config manager (torchtitan 0.3.0) on exported config modules, build the
model config on the meta device, and run torchtitan's pipeline stage mapping on the exported split.

Runs in the framework environment (python fw_torchtitan.py SPEC OUT). One device query is patched:
``has_cuda_capability`` in torchtitan/components/quantization/float8.py:230 answers True (an H100
is sm90 >= sm89; there is no GPU here), so the float8 converter of an fp8 plan is built. The
config manager imports the exported module by its path (``--module``), calls its config function,
validates with tyro and ``Trainer.Config.__post_init__``; the model is built under
``torch.device("meta")`` (no memory, no GPU); ``_get_pp_rank_to_stage_indices_mapping`` is the
function ``pipeline_llm`` uses to give each pipeline rank its stages (distributed/pipeline_parallel.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys


def check(plan_dir: str, index: int) -> dict:
    import torch
    import torchtitan.components.quantization.float8 as float8
    from torchtitan.config.manager import ConfigManager
    from torchtitan.distributed.pipeline_parallel import _get_pp_rank_to_stage_indices_mapping

    float8.has_cuda_capability = lambda *a: True  # no GPU here: an H100 (sm90) has sm89 float8
    logging.disable(logging.WARNING)
    sys.path.insert(0, plan_dir)
    sys.modules.pop("paraplan_torchtitan", None)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            cfg = ConfigManager().parse_args(["--module", "paraplan_torchtitan", "--config", "paraplan_plan"])
    except (ValueError, ImportError, SystemExit, AssertionError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        sys.path.remove(plan_dir)
    par, trn = cfg.parallelism, cfg.training
    with torch.device("meta"):
        model = cfg.model_spec.model.build()
    params = sum(p.numel() for p in model.parameters())
    children = [name for name, _ in model.named_children()]
    layer_names = [f"layers.{name}" for name, _ in model.layers.named_children()]
    modules = [m for m in children if m != "layers"]
    fqns = par.module_fqns_per_model_part
    stage_of_rank = None
    if par.pipeline_parallel_degree > 1:
        stage_of_rank = [list(_get_pp_rank_to_stage_indices_mapping(
            r, par.pipeline_parallel_degree, par.pipeline_parallel_schedule, len(fqns)))
            for r in range(par.pipeline_parallel_degree)]
    return {"ok": True, "params": params, "layers": len(layer_names), "top_modules": modules,
            "all_modules_in_order": ["tok_embeddings", *layer_names, "norm", "lm_head"],
            "fqns": fqns, "stage_of_rank": stage_of_rank,
            "parallelism": {k: getattr(par, k) for k in (
                "data_parallel_replicate_degree", "data_parallel_shard_degree", "tensor_parallel_degree",
                "enable_sequence_parallel", "pipeline_parallel_degree", "pipeline_parallel_schedule",
                "pipeline_parallel_microbatch_size", "context_parallel_degree", "expert_parallel_degree")},
            "training": {"local_batch_size": trn.local_batch_size, "global_batch_size": trn.global_batch_size,
                         "seq_len": trn.seq_len, "enable_cpu_offload": trn.enable_cpu_offload},
            "ac": type(cfg.activation_checkpoint).__qualname__ if cfg.activation_checkpoint else None,
            "converters": [type(c).__qualname__ for c in (cfg.model_spec.model.converters or [])]
            if hasattr(cfg.model_spec.model, "converters") else None,
            "float8_linears": sum("Float8" in type(m).__name__ for m in model.modules())}


def run_all(spec_path: str, out_path: str) -> None:
    results = {}
    for i, item in enumerate(json.load(open(spec_path))):
        try:
            results[item["dir"]] = check(item["dir"], i)
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            results[item["dir"]] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    json.dump(results, open(out_path, "w"), default=str)


if __name__ == "__main__":
    run_all(sys.argv[1], sys.argv[2])
