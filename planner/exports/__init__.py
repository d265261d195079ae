"""Launch configurations for a chosen plan, one module per target framework:

- ``megatron``: Megatron-LM ``pretrain_gpt.py`` arguments (megatron-core 0.19.2), a bash array;
- ``deepspeed``: the DeepSpeed JSON config (0.19.8); ``--out DIR`` adds a launch.sh that runs the
  user's DeepSpeed training script with it (the model code carries tp, pp and recompute);
- ``torchtitan``: a torchtitan 0.3.0 config-registry Python module;
- ``json``: the paraplan scenario (read back by ``estimate --layout``).

Each target refuses, with the framework's reason and source line (planner.frameworks), what it
cannot run; nothing here is a formula — degrees and sizes are copied from the plan. ``export_text``
is what ``--export`` prints; ``export_files`` is what ``--out DIR`` writes (config + launch.sh).
"""

from __future__ import annotations

import json

from ..errors import SpecError
from ..frameworks import VERSIONS
from ..scenario import Scenario
from .deepspeed import deepspeed_config, model_code_note
from .json_export import scenario_json
from .launch import script
from .megatron import megatron_args, megatron_env, megatron_text
from .torchtitan import CONFIG_FN, MODULE_NAME, torchtitan_launch_args, torchtitan_module

FORMATS = ("megatron", "deepspeed", "torchtitan", "json")


def header(scenario: Scenario) -> str:
    """One line naming the plan: model, GPUs, layout, schedule, batch, recompute, precision, offload."""
    lay, trn = scenario.layout, scenario.training
    m = trn.global_batch_size // (trn.micro_batch_size * lay.dp)
    return (f"paraplan plan: {scenario.model.name} on {scenario.gpus} x {scenario.hardware.name}, "
            f"{lay.describe()} {lay.schedule}, micro-batch {trn.micro_batch_size} x {m}, "
            f"recompute {trn.recompute}, {trn.precision}"
            + (f", CPU offload {trn.offload.describe()}" if trn.offload.any else ""))


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise SpecError(f"'{fmt}' is not one of: {', '.join(FORMATS)}", field="--export")


def export_text(fmt: str, scenario: Scenario) -> str:
    """What ``--export FMT`` prints: the config itself, verbatim (SpecError when the target refuses)."""
    _check(fmt)
    model, trn, lay = scenario.model, scenario.training, scenario.layout
    if fmt == "json":
        return scenario_json(scenario)
    if fmt == "deepspeed":
        return json.dumps(deepspeed_config(trn, lay, model), indent=2) + "\n"
    if fmt == "torchtitan":
        return torchtitan_module(model, trn, lay, header(scenario))
    return megatron_text(model, trn, lay, header(scenario))


def export_files(fmt: str, scenario: Scenario) -> dict[str, str]:
    """What ``--export FMT --out DIR`` writes: file name -> content (config, launch.sh)."""
    _check(fmt)
    head = header(scenario)
    model, trn, lay = scenario.model, scenario.training, scenario.layout
    if fmt == "json":
        return {"plan.json": scenario_json(scenario)}
    if fmt == "megatron":
        files = {"megatron_args.sh": megatron_text(model, trn, lay, head)}
        files["launch.sh"] = script(
            scenario, head + f" — {VERSIONS['megatron']}", ["megatron_args.sh"],
            '"${MEGATRON_LM:-.}/pretrain_gpt.py" "${MEGATRON_ARGS[@]}" $DATA_ARGS $OPT_ARGS',
            {"DATA_ARGS": "--data-path /path/to/dataset_text_document --tokenizer-type HuggingFaceTokenizer "
                          "--tokenizer-model /path/to/tokenizer",
             "OPT_ARGS": "--lr 3e-4 --min-lr 3e-5 --lr-decay-style cosine --train-iters 1000"},
            megatron_env(lay))
        return files
    if fmt == "deepspeed":
        files = {"ds_config.json": json.dumps(deepspeed_config(trn, lay, model), indent=2) + "\n"}
        files["launch.sh"] = script(
            scenario, head + f" — {VERSIONS['deepspeed']}; {model_code_note(trn, lay)}", [],
            '"${TRAIN_SCRIPT:?set TRAIN_SCRIPT to your DeepSpeed training script}" '
            '--deepspeed --deepspeed_config "$HERE/ds_config.json" $EXTRA_ARGS',
            {"EXTRA_ARGS": ""})
        return files
    files = {f"{MODULE_NAME}.py": torchtitan_module(model, trn, lay, head)}
    files["launch.sh"] = script(
        scenario, head + f" — {VERSIONS['torchtitan']}", [],
        "-m torchtitan.train " + " ".join(torchtitan_launch_args()) + " $EXTRA_ARGS",
        {"EXTRA_ARGS": "--training.steps 1000"},
        {"PYTHONPATH": '"$HERE${PYTHONPATH:+:$PYTHONPATH}"'})
    return files


__all__ = ["CONFIG_FN", "FORMATS", "MODULE_NAME", "deepspeed_config", "export_files", "export_text", "header",
           "megatron_args"]
