"""Launch configurations for a chosen plan: Megatron-LM arguments, a DeepSpeed JSON config, a
torchtitan TOML ``[parallelism]`` section, or the paraplan scenario JSON.

Flag and key names were checked against the frameworks' own sources (see MEGATRON_FLAG_SOURCES and
the module docstrings); nothing here is a formula — degrees and sizes are copied from the plan.
"""

from __future__ import annotations

import json

from ..errors import SpecError
from ..scenario import Scenario
from ..specs import Layout, ModelSpec, TrainingSpec, stage_layer_counts

FORMATS = ("megatron", "deepspeed", "torchtitan", "json")

# Where each emitted Megatron-LM flag is defined: megatron/training/arguments.py of NVIDIA/Megatron-LM
# (group.add_argument('--flag', ...)), checked with the code index on the named helper function.
MEGATRON_FLAG_SOURCES = {
    "--tensor-model-parallel-size": "_add_distributed_args",
    "--pipeline-model-parallel-size": "_add_distributed_args",
    "--num-layers-per-virtual-pipeline-stage": "_add_distributed_args",
    "--decoder-first-pipeline-num-layers": "_add_distributed_args",
    "--decoder-last-pipeline-num-layers": "_add_distributed_args",
    "--context-parallel-size": "_add_distributed_args",
    "--sequence-parallel": "_add_distributed_args",
    "--use-distributed-optimizer": "_add_distributed_args",
    "--overlap-grad-reduce": "_add_distributed_args",
    "--overlap-param-gather": "_add_distributed_args",
    "--use-torch-fsdp2": "_add_distributed_args (Megatron-LM core_r0.10+; not with pipeline parallelism)",
    "--tp-comm-overlap": "_add_distributed_args",
    "--num-layers": "_add_network_size_args",
    "--hidden-size": "_add_network_size_args",
    "--ffn-hidden-size": "_add_network_size_args",
    "--num-attention-heads": "_add_network_size_args",
    "--group-query-attention": "_add_network_size_args",
    "--num-query-groups": "_add_network_size_args",
    "--max-position-embeddings": "_add_network_size_args",
    "--position-embedding-type": "_add_network_size_args",
    "--normalization": "_add_network_size_args",
    "--swiglu": "_add_network_size_args",
    "--untie-embeddings-and-output-weights": "_add_network_size_args",
    "--disable-bias-linear": "_add_network_size_args",
    "--seq-length": "_add_data_args",
    "--micro-batch-size": "_add_training_args",
    "--global-batch-size": "_add_training_args",
    "--recompute-granularity": "_add_training_args",
    "--recompute-method": "_add_training_args",
    "--recompute-num-layers": "_add_training_args",
    "--use-flash-attn": "_add_training_args",
    "--bf16": "_add_mixed_precision_args",
    "--fp16": "_add_mixed_precision_args",
    "--fp8-format": "_add_transformer_engine_args",
}


def megatron_args(model: ModelSpec, training: TrainingSpec, layout: Layout) -> list[str]:
    """Megatron-LM command-line arguments (model shape, parallelism, batch, precision, recompute)."""
    a: list[str] = [
        "--num-layers", str(model.num_layers), "--hidden-size", str(model.hidden_size),
        "--ffn-hidden-size", str(model.ffn_hidden_size), "--num-attention-heads", str(model.num_heads),
    ]
    if model.kv_heads != model.num_heads:
        a += ["--group-query-attention", "--num-query-groups", str(model.kv_heads)]
    a += ["--seq-length", str(training.seq_length),
          "--max-position-embeddings", str(max(model.max_position_embeddings, training.seq_length))]
    if model.position_kind == "rope":
        a += ["--position-embedding-type", "rope"]
    if model.norm_kind == "rmsnorm":
        a += ["--normalization", "RMSNorm"]
    if model.ffn_kind == "swiglu":
        a.append("--swiglu")
    if not model.tied_embeddings:
        a.append("--untie-embeddings-and-output-weights")
    if not model.linear_bias:
        a.append("--disable-bias-linear")
    a += ["--tensor-model-parallel-size", str(layout.tp), "--pipeline-model-parallel-size", str(layout.pp)]
    if layout.vpp > 1:
        a += ["--num-layers-per-virtual-pipeline-stage", str(model.num_layers // (layout.pp * layout.vpp))]
    if layout.stage_layers is not None:
        counts = stage_layer_counts(layout, model)
        if len(set(counts[1:-1])) > 1:
            raise SpecError(f"stage_layers {counts} cannot be written as Megatron first/last-stage layers",
                            field="layout.stage_layers")
        a += ["--decoder-first-pipeline-num-layers", str(counts[0]),
              "--decoder-last-pipeline-num-layers", str(counts[-1])]
    if layout.cp > 1:
        a += ["--context-parallel-size", str(layout.cp)]
    if layout.sequence_parallel:
        a.append("--sequence-parallel")
    if layout.effective_zero_stage == 3:
        a.append("--use-torch-fsdp2")  # parameters, gradients and optimizer state sharded (FSDP2)
    elif layout.effective_zero_stage >= 1 or training.distributed_optimizer:
        a.append("--use-distributed-optimizer")
    if layout.dp > 1 and training.overlap_dp_comm:
        a.append("--overlap-grad-reduce")
    if layout.dp > 1 and training.overlap_param_gather and layout.effective_zero_stage in (1, 2):
        a.append("--overlap-param-gather")
    if layout.tp > 1 and training.tp_comm_overlap:
        a.append("--tp-comm-overlap")
    a += ["--micro-batch-size", str(training.micro_batch_size), "--global-batch-size",
          str(training.global_batch_size)]
    if training.recompute == "full":
        a += ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
    elif training.recompute == "selective":
        a += ["--recompute-granularity", "selective"]
    if training.flash_attention:
        a.append("--use-flash-attn")
    a += {"bf16": ["--bf16"], "fp16": ["--fp16"], "fp8": ["--bf16", "--fp8-format", "hybrid"]}[training.precision]
    return a


def megatron_notes(layout: Layout) -> list[str]:
    """What the Megatron arguments cannot say (printed as shell comments)."""
    notes = []
    if layout.schedule == "zb-h1":
        notes.append("schedule zb-h1 (zero bubble) is not in Megatron-LM; use the zero-bubble fork or expect 1F1B")
    if layout.effective_zero_stage == 2:
        notes.append("ZeRO-2: Megatron-LM's distributed optimizer shards optimizer state (and reduce-scatters "
                     "gradients into its shard); for the full ZeRO-2 memory saving use --export deepspeed")
    return notes


def deepspeed_config(training: TrainingSpec, layout: Layout) -> dict:
    """DeepSpeed JSON config: batch sizes, ZeRO stage, precision
    (keys per deepspeed.ai/docs/config-json: train_batch_size = micro * accumulation * dp)."""
    accum = training.global_batch_size // (training.micro_batch_size * layout.dp)
    cfg: dict = {
        "train_batch_size": training.global_batch_size,
        "train_micro_batch_size_per_gpu": training.micro_batch_size,
        "gradient_accumulation_steps": accum,
        "zero_optimization": {"stage": layout.effective_zero_stage,
                              "overlap_comm": training.overlap_dp_comm},
    }
    if training.precision == "fp16":
        cfg["fp16"] = {"enabled": True}
    else:
        cfg["bf16"] = {"enabled": True}
    if training.recompute != "none":
        cfg["activation_checkpointing"] = {"partition_activations": layout.tp > 1,
                                           "contiguous_memory_optimization": False}
    return cfg


TITAN_SCHEDULES = {"gpipe": "GPipe", "1f1b": "1F1B", "interleaved-1f1b": "Interleaved1F1B",
                   "zb-h1": "InterleavedZeroBubble"}


def torchtitan_toml(training: TrainingSpec, layout: Layout, num_layers: int) -> str:
    """torchtitan TOML: ``[parallelism]`` (field names of torchtitan's Parallelism config class),
    ``[training]`` sequence and batch, ``[activation_checkpoint]`` mode."""
    shard = layout.shard_degree if layout.effective_zero_stage >= 1 else 1
    replicate = layout.dp // shard
    lines = ["[parallelism]",
             f"data_parallel_replicate_degree = {replicate}",
             f"data_parallel_shard_degree = {shard}",
             f"tensor_parallel_degree = {layout.tp}",
             f"pipeline_parallel_degree = {layout.pp}",
             f"context_parallel_degree = {layout.cp}"]
    if layout.pp > 1:
        if layout.schedule == "zb-h1":
            lines.append("# zb-h1 has no single-stage torchtitan schedule; nearest zero-bubble schedule below")
        lines += [f'pipeline_parallel_schedule = "{TITAN_SCHEDULES[layout.schedule]}"',
                  f"pipeline_parallel_microbatch_size = {training.micro_batch_size}"]
        if layout.stage_layers is None:
            lines.append(f"pipeline_parallel_layers_per_stage = {num_layers // (layout.pp * layout.vpp)}")
    lines += ["", "[training]", f"seq_len = {training.seq_length}",
              f"global_batch_size = {training.global_batch_size}",
              f"local_batch_size = {training.global_batch_size // layout.dp}",
              "", "[activation_checkpoint]", f'mode = "{training.recompute}"', ""]
    return "\n".join(lines)


def export_text(fmt: str, scenario: Scenario) -> str:
    """The launch configuration of ``scenario`` in ``fmt`` (megatron, deepspeed, torchtitan, json)."""
    if fmt not in FORMATS:
        raise SpecError(f"'{fmt}' is not one of: {', '.join(FORMATS)}", field="--export")
    lay, trn = scenario.layout, scenario.training
    if fmt == "json":
        return json.dumps(scenario.to_file_dict(), indent=2) + "\n"
    if fmt == "deepspeed":
        return json.dumps(deepspeed_config(trn, lay), indent=2) + "\n"
    if fmt == "torchtitan":
        return torchtitan_toml(trn, lay, scenario.model.num_layers)
    args = megatron_args(scenario.model, trn, lay)
    head = [f"# paraplan plan: {scenario.model.name} on {scenario.gpus} x {scenario.hardware.name}, "
            f"{lay.describe()} {lay.schedule}"] + [f"# note: {n}" for n in megatron_notes(lay)]
    pairs, i = [], 0
    while i < len(args):
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            pairs.append(f"{args[i]} {args[i + 1]}")
            i += 2
        else:
            pairs.append(args[i])
            i += 1
    return "\n".join(head) + "\nMEGATRON_ARGS=\"" + " \\\n  ".join(pairs) + "\"\n"


__all__ = ["FORMATS", "MEGATRON_FLAG_SOURCES", "deepspeed_config", "export_text", "megatron_args",
           "torchtitan_toml"]
