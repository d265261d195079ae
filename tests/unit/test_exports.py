"""planner.exports: launch configs parse and carry the plan's degrees; the JSON scenario round-trips."""

from __future__ import annotations

import json
import re

import pytest
import tomllib

from hwprofiles import load_hardware, load_model
from planner.exports import MEGATRON_FLAG_SOURCES, deepspeed_config, export_text, megatron_args
from planner.scenario import Scenario, load_scenario
from planner.specs import Layout, TrainingSpec

# Each flag we emit, and where its name was verified (NVIDIA/Megatron-LM
# megatron/training/arguments.py, `group.add_argument('<flag>', ...)`, found with the code index).
VERIFIED_IN = "NVIDIA/Megatron-LM megatron/training/arguments.py"


def scenario(layout: Layout, **trn) -> Scenario:
    model = load_model("llama3-70b")
    return Scenario(model=model, hardware=load_hardware("h100-sxm-80gb"), gpus=layout.gpus,
                    training=TrainingSpec(global_batch_size=128, seq_length=8192, **trn), layout=layout)


INTERLEAVED = Layout(tp=4, pp=4, vpp=2, dp=4, zero_stage=1, sequence_parallel=True, schedule="interleaved-1f1b")


def test_json_export_round_trips_to_the_same_estimate(tmp_path):
    sc = scenario(INTERLEAVED, micro_batch_size=1, recompute="selective")
    path = tmp_path / "plan.json"
    path.write_text(export_text("json", sc))
    back = load_scenario(path)
    assert back == sc
    assert back.estimate().step_time_s == sc.estimate().step_time_s


def test_deepspeed_config_batch_arithmetic():
    sc = scenario(INTERLEAVED, micro_batch_size=2, precision="fp16")
    cfg = json.loads(export_text("deepspeed", sc))
    assert cfg["train_batch_size"] == 128
    assert cfg["train_micro_batch_size_per_gpu"] == 2
    assert cfg["train_batch_size"] == 2 * cfg["gradient_accumulation_steps"] * INTERLEAVED.dp
    assert cfg["zero_optimization"]["stage"] == 1
    assert cfg["fp16"]["enabled"] and "bf16" not in cfg
    assert deepspeed_config(sc.training, INTERLEAVED.replace(zero_stage=0))["zero_optimization"]["stage"] == 0


def test_torchtitan_toml_parses_with_degrees():
    sc = scenario(INTERLEAVED, micro_batch_size=1)
    doc = tomllib.loads(export_text("torchtitan", sc))
    par = doc["parallelism"]
    assert par["tensor_parallel_degree"] == 4 and par["pipeline_parallel_degree"] == 4
    assert par["data_parallel_shard_degree"] * par["data_parallel_replicate_degree"] == INTERLEAVED.dp
    assert par["context_parallel_degree"] == 1
    assert par["pipeline_parallel_schedule"] == "Interleaved1F1B"
    assert par["pipeline_parallel_layers_per_stage"] == 80 // (4 * 2)
    assert doc["training"]["seq_len"] == 8192


def test_fsdp_hybrid_sharding_maps_to_shard_and_replicate():
    lay = Layout(tp=8, pp=1, dp=8, zero_stage=3, dp_shard=4)
    par = tomllib.loads(export_text("torchtitan", scenario(lay)))["parallelism"]
    assert (par["data_parallel_shard_degree"], par["data_parallel_replicate_degree"]) == (4, 2)


def test_megatron_flags_are_verified_and_carry_degrees():
    sc = scenario(INTERLEAVED, micro_batch_size=1, recompute="full")
    args = megatron_args(sc.model, sc.training, INTERLEAVED)
    flags = [a for a in args if a.startswith("--")]
    unknown = [f for f in flags if f not in MEGATRON_FLAG_SOURCES]
    assert not unknown, f"flags not verified against {VERIFIED_IN}: {unknown}"

    def value(flag):
        return args[args.index(flag) + 1]

    assert value("--tensor-model-parallel-size") == "4"
    assert value("--pipeline-model-parallel-size") == "4"
    assert value("--num-layers-per-virtual-pipeline-stage") == str(80 // 8)
    assert value("--recompute-granularity") == "full"
    assert value("--num-query-groups") == "8"
    assert "--sequence-parallel" in flags and "--use-distributed-optimizer" in flags


def test_megatron_uneven_split_uses_first_last_stage_layers():
    lay = Layout(tp=8, pp=3, dp=2, stage_layers=[27, 27, 26])
    text = export_text("megatron", scenario(lay))
    assert re.search(r"--decoder-first-pipeline-num-layers 27\b", text)
    assert re.search(r"--decoder-last-pipeline-num-layers 26\b", text)


def test_unknown_format_is_a_spec_error():
    from planner.errors import SpecError

    with pytest.raises(SpecError, match="megatron"):
        export_text("nemo", scenario(INTERLEAVED))
