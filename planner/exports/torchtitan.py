"""torchtitan config for a plan (torchtitan 0.3.0: a Python ``config_registry`` module).

torchtitan 0.3.0 reads no TOML: ``torchtitan.train --module M --config F`` imports module ``M`` and
calls ``F()`` for a ``Trainer.Config`` (torchtitan/config/manager.py:47-158). The export is such a
module: it starts from torchtitan's own llama3 recipe (of the flavour when the model is one, else the
debug recipe), puts in the planned model built from the ModelSpec (planner.exports.torchtitan_model),
then sets the plan's parallelism, batch, activation checkpointing and float8 converter. A Qwen3-MoE plan
starts from torchtitan's ``qwen3_30b_a3b`` recipe with the ``qwen3`` module's own flavour (FSDP over dp_shard,
experts over ep and efsdp) and turns CUDA graphs off: its all-to-all dispatcher reads the split sizes on the
host (``.tolist()``, torchtitan/models/common/token_dispatcher.py:307-308), which torchtitan's trainer refuses
to graph (torchtitan/trainer.py:205). Pipeline
stages are written as ``module_fqns_per_model_part`` (the plan's own split, virtual stages in looped
order), so torchtitan's default split (which counts the embedding and output as layers) does not apply.

The SPMD backend is ``partial_dtensor``: FSDP2 over plain parameters with DTensor tensor parallelism,
the path of torchtitan's published benchmarks. Its default ``spmd_types`` needs ``fully_shard`` to turn
spmd-types annotations into DTensor parameters, which torch 2.13's FSDP2 does not
(torch/distributed/fsdp/_fully_shard/_fsdp_param.py refuses the plain parameters).
"""

from __future__ import annotations

from ..frameworks import VERSIONS, check_launchable
from ..frameworks.common import accumulation_steps, virtual_stage_layers
from ..frameworks.torchtitan import SCHEDULE_NAMES, llama3_flavour, qwen3_moe_flavour
from ..specs import Layout, ModelSpec, TrainingSpec
from .torchtitan_model import MODEL_FN, MODEL_IMPORTS, model_source

FRAMEWORK = "torchtitan"
MODULE_NAME = "paraplan_torchtitan"
CONFIG_FN = "paraplan_plan"
BASE_RECIPES = {"1B": None, "3B": None, "8B": "llama3_8b", "70B": "llama3_70b", "405B": "llama3_405b"}


def module_fqns(layout: Layout, model: ModelSpec) -> list[list[str]]:
    """Module names of each virtual stage: embedding on the first, norm and head on the last."""
    parts, start = [], 0
    for n in virtual_stage_layers(layout, model):
        parts.append([f"layers.{i}" for i in range(start, start + n)])
        start += n
    parts[0].insert(0, "tok_embeddings")
    parts[-1] += ["norm", "lm_head"]
    return parts


def batch_fields(training: TrainingSpec, layout: Layout) -> dict[str, int]:
    """training.local_batch_size and parallelism.pipeline_parallel_microbatch_size.

    Without pipelining a local batch is one micro-batch and torchtitan accumulates
    global / (local * dp) of them; with pipelining the local batch is split into pipeline
    micro-batches (configs.py:37-41), so it holds all of a step's micro-batches."""
    if layout.pp == 1:
        return {"local_batch_size": training.micro_batch_size, "pipeline_parallel_microbatch_size": 1}
    return {"local_batch_size": training.micro_batch_size * accumulation_steps(layout, training),
            "pipeline_parallel_microbatch_size": training.micro_batch_size}


def parallelism_fields(training: TrainingSpec, layout: Layout, model: ModelSpec) -> dict:
    """ParallelismConfig fields (torchtitan/config/configs.py:112-289)."""
    z3 = layout.effective_zero_stage == 3
    shard = (layout.dp_shard or layout.dp) if z3 else 1
    fields: dict = {
        "data_parallel_replicate_degree": layout.dp // shard,
        "data_parallel_shard_degree": shard,
        "tensor_parallel_degree": layout.tp,
        "enable_sequence_parallel": layout.sequence_parallel,
        "pipeline_parallel_degree": layout.pp,
        "context_parallel_degree": layout.cp,
        "expert_parallel_degree": layout.ep,
        "spmd_backend": "partial_dtensor",
    }
    if layout.pp > 1:
        fields.update(pipeline_parallel_schedule=SCHEDULE_NAMES[layout.schedule],
                      pipeline_parallel_microbatch_size=batch_fields(training, layout)[
                          "pipeline_parallel_microbatch_size"],
                      module_fqns_per_model_part=module_fqns(layout, model))
    return fields


def torchtitan_module(model: ModelSpec, training: TrainingSpec, layout: Layout, header: str) -> str:
    """The config-registry module (Python source) of the plan; SpecError when torchtitan refuses it."""
    check_launchable(FRAMEWORK, model, training, layout, field="--export torchtitan")
    flavour = llama3_flavour(model)
    qwen3 = model.is_moe  # a Qwen3-MoE flavour (torchtitan/models/qwen3; check_launchable): FSDP + EP
    if qwen3:
        flavour, base = qwen3_moe_flavour(model), "qwen3_30b_a3b"  # models/qwen3/config_registry.py:295
    else:
        base = BASE_RECIPES.get(flavour) or "llama3_debugmodel"
    par = parallelism_fields(training, layout, model)
    batch = batch_fields(training, layout)
    fp8 = training.precision == "fp8"
    ac = {"none": "None", "selective": "SelectiveAC.Config()", "full": "FullAC.Config()"}[training.recompute]
    conv = ("[Float8LinearConverter.Config(filter_fqns=[\"lm_head\"], model_compile_enabled=False)]"
            if fp8 else "[]")
    par_src = ",\n        ".join(f"{k}={v!r}" for k, v in par.items())
    model_imports, model_block, spec = (qwen3_model(flavour, base, conv) if qwen3 else llama3_model(model, base, conv))
    return f'''"""{header}
target: {VERSIONS[FRAMEWORK]} (config_registry module; run with
  python -m torchtitan.train --module {MODULE_NAME} --config {CONFIG_FN})
"""

import dataclasses

from torchtitan.components.loss import ChunkedLossWrapper, CrossEntropyLoss
from torchtitan.components.quantization import Float8LinearConverter
from torchtitan.config import CompileConfig, ParallelismConfig
from torchtitan.distributed.activation_checkpoint import FullAC, SelectiveAC
from torchtitan.models.common.config_utils import decoder_vocab_size
{model_imports}

GLOBAL_BATCH = {training.global_batch_size}
{model_block}

def {CONFIG_FN}():
    """torchtitan's own {base} recipe with the plan's model, layout and batch."""
    config = {base}()
    config.model_spec = {spec}
    config.loss = ChunkedLossWrapper.Config(
        loss_fn=CrossEntropyLoss.Config(global_vocab_size=decoder_vocab_size(config.model_spec)))
    config.parallelism = ParallelismConfig(
        {par_src},
    )
    config.training.seq_len = {training.seq_length}
    config.training.local_batch_size = {batch["local_batch_size"]}
    config.training.global_batch_size = GLOBAL_BATCH
    config.training.mixed_precision_param = "bfloat16"
    config.training.disable_cuda_graphs = {layout.pp > 1 or model.is_moe}
    config.training.enable_cpu_offload = {training.offload.params}  # FSDP2 CPUOffloadPolicy
    config.activation_checkpoint = {ac}
    config.compile = CompileConfig(enable=False)  # eager, as the torchtitan recipe prices it
    return config
'''


def llama3_model(model: ModelSpec, base: str, converters: str) -> tuple[str, str, str]:
    """(imports, module source, model_spec expression) building the planned model from the ModelSpec inside
    torchtitan's llama3 ModelSpec (its parallelize / pipelining functions; planner.exports.torchtitan_model)."""
    imports = (f"from torchtitan.models.llama3 import model_registry\n"
               f"from torchtitan.models.llama3.config_registry import {base}\n"
               f"from torchtitan.models.utils import validate_converter_order\n{MODEL_IMPORTS}")
    block = f'''{model_source(model)}

def paraplan_model_spec(converters):
    """torchtitan's llama3 ModelSpec (parallelize / pipelining functions) holding the planned model."""
    model = {MODEL_FN}()
    validate_converter_order(converters)
    for converter in converters:
        model = converter.build().convert(model)
    return dataclasses.replace(model_registry("debugmodel"), flavor="paraplan", model=model)
'''
    return imports, block, f"paraplan_model_spec({converters})"


def qwen3_model(flavour: str, base: str, converters: str) -> tuple[str, str, str]:
    """(imports, module source, model_spec expression) of torchtitan's own qwen3 MoE flavour."""
    imports = (f"from torchtitan.models.qwen3 import model_registry\n"
               f"from torchtitan.models.qwen3.config_registry import {base}")
    convs = "None" if converters == "[]" else converters
    return imports, f'FLAVOUR = "{flavour}"\n', f"model_registry(FLAVOUR, converters={convs})"


def torchtitan_launch_args() -> list[str]:
    """Arguments of ``python -m torchtitan.train`` selecting the exported module."""
    return ["--module", MODULE_NAME, "--config", CONFIG_FN]
