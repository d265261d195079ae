"""Run Megatron-LM's own ``parse_args`` + ``validate_args`` (megatron-core 0.19.2) on exported args.

Runs in the framework environment (python fw_megatron.py PLAN_DIR WORLD_SIZE), prints one JSON
line: the parsed values the test compares with the plan, or the framework's error.

Patches, each needed on a CPU-only Python 3.11 machine and nothing else:
- ``typing.override`` (Python 3.12) from typing_extensions: the wheel is cp312-only and
  megatron/training/models/hybrid.py imports it; this machine's CPU torch wheel is cp311.
- ``get_device_arch_version`` -> 9 (H100, sm90) in megatron.training.arguments: validate_args asks
  the CUDA device's major version (arguments.py:1413) to pick the CUDA_DEVICE_MAX_CONNECTIONS rule;
  there is no GPU here. torch.cuda.get_device_capability -> (9, 0) for the same reason.
- ``apply_rope_fusion`` off only for reading the TransformerConfig back (no Transformer Engine on CPU).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import typing

import typing_extensions

typing.override = typing_extensions.override  # Python 3.12 API, see the module docstring


def shell_args(plan_dir: str) -> tuple[list[str], dict[str, str]]:
    """argv and exported environment exactly as bash sees them after sourcing the args file."""
    src = os.path.join(plan_dir, "megatron_args.sh")
    out = subprocess.run(["bash", "-c", f'source "{src}"; printf "%s\\0" "${{MEGATRON_ARGS[@]}}"; '
                          'printf "\\1"; env -0'], check=True, capture_output=True, text=True).stdout
    argv_part, env_part = out.split("\1")
    argv = [a for a in argv_part.split("\0") if a]
    env = dict(kv.split("=", 1) for kv in env_part.split("\0") if "=" in kv)
    return argv, {k: v for k, v in env.items() if k == "CUDA_DEVICE_MAX_CONNECTIONS"}


def main(plan_dir: str, world_size: int, extra: list[str]) -> dict:
    import torch

    torch.cuda.get_device_capability = lambda *a, **k: (9, 0)  # no GPU: H100's capability
    import megatron.training.arguments as A

    A.get_device_arch_version = lambda: 9  # no GPU: H100 (sm90)
    from megatron.training.theoretical_memory_usage import compute_weight_and_optimizer_memory

    os.environ.pop("CUDA_DEVICE_MAX_CONNECTIONS", None)  # only what the args file exports
    argv, env = shell_args(plan_dir)
    os.environ.update(env, WORLD_SIZE=str(world_size), RANK="0")
    sys.argv = ["pretrain_gpt.py", *argv, *extra]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            args = A.parse_args()
            A.validate_args(args)
    except (AssertionError, ValueError, SystemExit) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    from megatron.core.tokenizers.utils.build_tokenizer import vocab_size_with_padding

    with contextlib.redirect_stdout(io.StringIO()):
        args.padded_vocab_size = vocab_size_with_padding(args.vocab_size, args)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        compute_weight_and_optimizer_memory(args, verbose=True)
    billions = {line.split(" in billions:")[0]: float(line.split(":")[1])
                for line in buf.getvalue().splitlines() if "in billions:" in line}
    # TransformerConfig (Megatron's model config) checks that Transformer Engine provides the fused
    # RoPE kernel (transformer_config.py:2185); TE is a GPU package, absent here: read the config back
    # with the fusion off (the exported args do not choose it, Megatron's default does).
    args.apply_rope_fusion = False
    with contextlib.redirect_stdout(io.StringIO()):
        config = A.core_transformer_config_from_args(args)
    # Megatron's OptimizerConfig, built from the args as get_megatron_optimizer_config does
    # (megatron/training/training.py:1962-1969): its __post_init__ checks the precision-aware optimizer
    # that --optimizer-cpu-offload needs (adam + distributed optimizer, optimizer_config.py:430-436).
    import dataclasses

    from megatron.core.optimizer import OptimizerConfig

    try:
        OptimizerConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(OptimizerConfig)
                           if hasattr(args, f.name)})
    except (AssertionError, ValueError, RuntimeError) as exc:
        return {"ok": False, "error": f"OptimizerConfig: {type(exc).__name__}: {exc}"}
    keep = ("tensor_model_parallel_size", "pipeline_model_parallel_size", "data_parallel_size",
            "virtual_pipeline_model_parallel_size", "context_parallel_size", "expert_model_parallel_size",
            "micro_batch_size", "global_batch_size", "sequence_parallel", "use_distributed_optimizer",
            "use_torch_fsdp2", "use_megatron_fsdp", "data_parallel_sharding_strategy", "recompute_granularity", "recompute_method", "bf16", "fp16", "fp8",
            "num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads", "num_query_groups",
            "rotary_base", "add_qkv_bias", "add_bias_linear", "untie_embeddings_and_output_weights",
            "padded_vocab_size", "num_experts", "moe_router_topk", "pipeline_model_parallel_layout",
            "decoder_first_pipeline_num_layers", "decoder_last_pipeline_num_layers", "optimizer_cpu_offload",
            "optimizer_offload_fraction", "use_precision_aware_optimizer", "gradient_accumulation_fusion")
    values = {k: getattr(args, k, None) for k in keep}
    values["pipeline_model_parallel_layout"] = str(values["pipeline_model_parallel_layout"] or "") or None
    values["gated_linear_unit"] = config.gated_linear_unit
    values["normalization"] = config.normalization
    return {"ok": True, "args": values, "billions": billions}


def run_all(spec_path: str, out_path: str) -> None:
    """Check every plan of the spec file ([{"dir", "world_size", "extra"}]); write the results."""
    results = {}
    for item in json.load(open(spec_path)):
        try:
            results[item["dir"]] = main(item["dir"], item["world_size"], item["extra"])
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            results[item["dir"]] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    json.dump(results, open(out_path, "w"), default=str)


if __name__ == "__main__":
    run_all(sys.argv[1], sys.argv[2])
