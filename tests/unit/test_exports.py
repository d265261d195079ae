"""planner.exports: each target renders the plan in its own terms, refuses what it cannot run, and the
launch scripts are valid bash. (The frameworks' own parsers check the same exports in tests/frameworks.)"""

from __future__ import annotations

import ast
import json
import subprocess

import pytest

from hwprofiles import load_hardware, load_model
from planner.errors import SpecError
from planner.exports import export_files, export_text, megatron_args
from planner.exports.megatron import pipeline_layout, vocab_divisor
from planner.exports.torchtitan import batch_fields, module_fqns
from planner.frameworks import refusal, resolve_framework, virtual_stage_layers
from planner.scenario import Scenario, load_scenario
from planner.specs import Layout, TrainingSpec


def scenario(layout: Layout, model: str = "llama3-70b", **trn) -> Scenario:
    return Scenario(model=load_model(model), hardware=load_hardware("h100-sxm-80gb"), gpus=layout.gpus,
                    training=TrainingSpec(**{"global_batch_size": 128, "seq_length": 8192, **trn}), layout=layout)


INTERLEAVED = Layout(tp=4, pp=4, vpp=2, dp=4, zero_stage=1, sequence_parallel=True, schedule="interleaved-1f1b")
L405 = Layout(tp=8, pp=16, vpp=4, dp=128, zero_stage=1, sequence_parallel=True, schedule="interleaved-1f1b",
              stage_layers=[7] + [8] * 14 + [7])


def value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_json_export_round_trips_to_the_same_estimate(tmp_path):
    sc = scenario(INTERLEAVED, micro_batch_size=1, recompute="selective")
    path = tmp_path / "plan.json"
    path.write_text(export_text("json", sc))
    back = load_scenario(path)
    assert back == sc
    assert back.estimate().step_time_s == sc.estimate().step_time_s


def test_deepspeed_batch_arithmetic_uses_data_parallel_size():
    sc = scenario(INTERLEAVED.replace(vpp=1, schedule="1f1b"), micro_batch_size=2, precision="fp16")
    cfg = json.loads(export_text("deepspeed", sc))
    assert cfg["train_batch_size"] == 128 == 2 * cfg["gradient_accumulation_steps"] * 4
    assert cfg["zero_optimization"]["stage"] == 1
    assert cfg["fp16"]["enabled"] and "bf16" not in cfg


def test_deepspeed_launcher_names_what_the_model_code_carries():
    """No Megatron-DeepSpeed launcher (not on PyPI, so never checked by its parser); launch.sh runs the
    user's script with ds_config.json and its header names tp, pp and the recompute granularity."""
    lay = Layout(tp=4, dp=16, zero_stage=1, sequence_parallel=True)
    files = export_files("deepspeed", scenario(lay, recompute="selective"))
    assert set(files) == {"ds_config.json", "launch.sh"}
    assert "tensor parallel 4, pipeline stages 1" in files["launch.sh"]
    assert "activation recompute selective" in files["launch.sh"]
    assert '--deepspeed --deepspeed_config "$HERE/ds_config.json"' in files["launch.sh"]


def test_megatron_args_carry_architecture_and_layout():
    sc = scenario(INTERLEAVED, micro_batch_size=1, recompute="full")
    args = megatron_args(sc.model, sc.training, INTERLEAVED)
    assert value(args, "--tensor-model-parallel-size") == "4"
    assert value(args, "--num-layers-per-virtual-pipeline-stage") == str(80 // 8)
    assert value(args, "--rotary-base") == "500000"  # Llama 3 rope_theta
    assert value(args, "--num-query-groups") == "8"
    assert value(args, "--recompute-granularity") == "full"
    assert "--untie-embeddings-and-output-weights" in args and "--disable-bias-linear" in args


def test_megatron_vocab_padding_keeps_the_planned_vocabulary():
    assert vocab_divisor(128256, 8) == 32 and 128256 % (32 * 8) == 0
    assert vocab_divisor(50688, 4) == 128


def test_llama3_405b_layout_is_the_published_one():
    """126 layers on pp16 x vpp4: the first and last virtual stages hold one layer, the rest two
    (Llama Team 2024, arXiv 2407.21783, sec. 3.3.2: one layer less on the first and last stages)."""
    m = load_model("llama3.1-405b")
    stages = virtual_stage_layers(L405, m)
    assert len(stages) == 64 and stages[0] == 1 and stages[-1] == 1 and set(stages[1:-1]) == {2}
    text = pipeline_layout(L405, m)
    assert text.startswith("E,t*1|t*2|") and text.endswith("|t*2|t*1,L")
    fqns = module_fqns(L405, m)
    assert fqns[0] == ["tok_embeddings", "layers.0"] and fqns[-1] == ["layers.125", "norm", "lm_head"]


def test_torchtitan_local_batch_is_the_micro_batch_without_pipelining():
    sc = scenario(Layout(tp=8, dp=8, fsdp=True, sequence_parallel=True), micro_batch_size=1)
    assert batch_fields(sc.training, sc.layout)["local_batch_size"] == 1  # 8 accumulation steps, not 8x memory
    src = export_text("torchtitan", sc)
    ast.parse(src)
    assert "config.training.local_batch_size = 1" in src and "data_parallel_shard_degree=8" in src


def test_torchtitan_local_batch_holds_the_pipeline_micro_batches():
    sc = scenario(Layout(tp=4, pp=4, dp=4, fsdp=True), micro_batch_size=2)
    fields = batch_fields(sc.training, sc.layout)
    assert fields == {"local_batch_size": 32, "pipeline_parallel_microbatch_size": 2}


@pytest.mark.parametrize("fmt,needle", [("megatron", "no GPipe"), ("deepspeed", "TrainSchedule")])
def test_gpipe_is_refused_not_renamed(fmt, needle):
    sc = scenario(Layout(tp=4, pp=4, dp=4, schedule="gpipe"))
    with pytest.raises(SpecError, match=needle):
        export_text(fmt, sc)
    assert "GPipe" in export_text("torchtitan", scenario(Layout(tp=4, pp=4, dp=4, schedule="gpipe", fsdp=True)))


def test_fp16_with_fsdp_and_zero_stages_a_target_lacks_are_refused():
    fsdp16 = scenario(Layout(tp=8, dp=8, fsdp=True), precision="fp16")
    assert "fp16" in refusal("torchtitan", fsdp16.model, fsdp16.training, fsdp16.layout)
    assert refusal("megatron", fsdp16.model, fsdp16.training, fsdp16.layout) is None  # Megatron-FSDP
    z2 = scenario(Layout(tp=8, dp=8, zero_stage=2))
    assert "no ZeRO-1/2" in refusal("torchtitan", z2.model, z2.training, z2.layout)
    assert refusal("deepspeed", z2.model, z2.training, z2.layout) is None
    args = megatron_args(z2.model, z2.training, z2.layout)
    assert value(args, "--data-parallel-sharding-strategy") == "optim_grads" and "--use-megatron-fsdp" in args


def test_megatron_interleaving_needs_micro_batches_multiple_of_pp():
    sc = scenario(INTERLEAVED, micro_batch_size=1)  # 128 / 4 = 32 micro-batches, 32 % 4 == 0
    assert refusal("megatron", sc.model, sc.training, sc.layout) is None
    odd = sc.model_copy(update={"training": sc.training.replace(global_batch_size=24)})  # 6 % 4 != 0
    assert "micro_batches(6) % pp(4) = 2 != 0" in refusal("megatron", odd.model, odd.training, odd.layout)


def test_moe_and_context_parallel_flags():
    m = load_model("llama3-8b").model_copy(update={"name": "moe", "num_experts": 8, "moe_top_k": 2,
                                                    "expert_ffn_hidden_size": 14336})
    lay = Layout(tp=2, dp=32, ep=8, cp=1, zero_stage=1, sequence_parallel=True)
    args = megatron_args(m, TrainingSpec(global_batch_size=256), lay)
    assert value(args, "--num-experts") == "8" and value(args, "--moe-router-topk") == "2"
    assert value(args, "--expert-model-parallel-size") == "8" and "--moe-grouped-gemm" in args
    assert value(args, "--moe-token-dispatcher-type") == "alltoall"
    cp = megatron_args(load_model("llama3-8b"), TrainingSpec(global_batch_size=8, seq_length=131072),
                       Layout(tp=8, cp=8, dp=1, sequence_parallel=True))
    assert value(cp, "--context-parallel-size") == "8" and value(cp, "--cp-comm-type") == "p2p"


@pytest.mark.parametrize("fmt", ["megatron", "deepspeed", "torchtitan"])
def test_launch_scripts_are_valid_bash(fmt, tmp_path):
    lay = Layout(tp=4, dp=16, fsdp=fmt != "megatron", zero_stage=1 if fmt == "megatron" else 0,
                 sequence_parallel=True)
    files = export_files(fmt, scenario(lay, recompute="selective"))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for name in files:
        if name.endswith(".sh"):
            subprocess.run(["bash", "-n", str(tmp_path / name)], check=True)
    assert "srun --nodes 8" in files["launch.sh"] and "--nproc-per-node 8" in files["launch.sh"]


def test_megatron_args_file_gives_the_exact_argv(tmp_path):
    (tmp_path / "a.sh").write_text(export_text("megatron", scenario(L405, model="llama3.1-405b", global_batch_size=2048)))
    out = subprocess.run(["bash", "-c", f'source "{tmp_path}/a.sh"; printf "%s\\n" "${{MEGATRON_ARGS[@]}}"'],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    assert out[out.index("--pipeline-model-parallel-layout") + 1].startswith("E,t*1|t*2")


def test_framework_of_recipe_and_export_target():
    assert resolve_framework(None, "megatron") == "megatron"
    assert resolve_framework(None, "fsdp") == "torchtitan"
    assert resolve_framework(None, "torch-amp") is None
    assert resolve_framework(None, "megatron", export="torchtitan") == "torchtitan"
    assert resolve_framework("deepspeed", "fsdp", export="torchtitan") == "deepspeed"
    with pytest.raises(SpecError, match="megatron, deepspeed, torchtitan"):
        resolve_framework("nemo", "megatron")


def test_unknown_format_is_a_spec_error():
    with pytest.raises(SpecError, match="megatron"):
        export_text("nemo", scenario(INTERLEAVED))


OFF_LAYOUT = Layout(tp=2, dp=4, fsdp=True, sequence_parallel=True)


def _parts(sc: Scenario):
    return sc.model, sc.training, sc.layout


def offloaded(level: str, layout: Layout = OFF_LAYOUT, **trn) -> Scenario:
    """Llama 3 70B on 8 H100 (the plan that fits only with offload) at an offload level."""
    from planner.work.offload import OFFLOAD_LEVELS

    off = {lv.describe(): lv.model_dump() for lv in OFFLOAD_LEVELS}[level]
    return scenario(layout, global_batch_size=64, seq_length=4096, offload=off, **trn)


def test_megatron_writes_optimizer_cpu_offload_with_what_validate_args_needs():
    args = megatron_args(*_parts(offloaded("off:opt")))
    for flag in ("--optimizer-cpu-offload", "--use-precision-aware-optimizer", "--use-megatron-fsdp"):
        assert flag in args
    assert value(args, "--optimizer-offload-fraction") == "1.0"
    zero0 = offloaded("off:opt", Layout(tp=8))  # dp 1: the distributed optimizer shards nothing
    assert {"--optimizer-cpu-offload", "--use-distributed-optimizer"} <= set(megatron_args(*_parts(zero0)))
    assert "--optimizer-cpu-offload" not in megatron_args(*_parts(scenario(OFF_LAYOUT)))


def test_megatron_refuses_what_it_cannot_offload_with_the_reason():
    with pytest.raises(SpecError, match="cannot offload gradients.*arguments.py:1803"):
        export_text("megatron", offloaded("off:opt+grad"))
    with pytest.raises(SpecError, match="needs the distributed optimizer"):
        export_text("megatron", offloaded("off:opt", Layout(dp=8)))


def test_deepspeed_writes_zero_offload_param_offload_and_cpu_checkpointing(tmp_path):
    sc = offloaded("off:opt+grad+param+act", recompute="full")
    cfg = json.loads(export_text("deepspeed", sc))
    zero = cfg["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["offload_optimizer"] == zero["offload_param"] == {"device": "cpu", "pin_memory": True}
    assert cfg["activation_checkpointing"]["cpu_checkpointing"] is True
    grad = json.loads(export_text("deepspeed", offloaded("off:opt+grad")))["zero_optimization"]
    assert "offload_optimizer" in grad and "offload_param" not in grad
    plain = json.loads(export_text("deepspeed", scenario(OFF_LAYOUT, recompute="full")))
    assert "offload_optimizer" not in plain["zero_optimization"]
    assert plain["activation_checkpointing"]["cpu_checkpointing"] is False


def test_deepspeed_refuses_optimizer_only_and_zero0_offload():
    with pytest.raises(SpecError, match="also accumulates the gradients"):
        export_text("deepspeed", offloaded("off:opt"))
    with pytest.raises(SpecError, match="ZeRO-0"):
        export_text("deepspeed", offloaded("off:opt+grad", Layout(tp=8)))


def test_torchtitan_writes_fsdp2_cpu_offload_and_refuses_partial_kinds():
    text = export_text("torchtitan", offloaded("off:opt+grad+param"))
    assert "config.training.enable_cpu_offload = True" in text and "CPU offload off:opt+grad+param" in text
    ast.parse(text)
    assert "config.training.enable_cpu_offload = False" in export_text("torchtitan", scenario(OFF_LAYOUT))
    for level in ("off:opt", "off:opt+grad"):
        with pytest.raises(SpecError, match="together"):
            export_text("torchtitan", offloaded(level))
    with pytest.raises(SpecError, match="cannot offload activations"):
        export_text("torchtitan", offloaded("off:opt+grad+param+act", recompute="full"))
    assert "offload" in export_text("json", offloaded("off:opt"))  # the scenario carries any level


@pytest.mark.parametrize("framework,level", [("megatron", "off:opt"), ("deepspeed", "off:opt+grad"),
                                             ("torchtitan", "off:opt+grad+param")])
def test_the_search_offloads_only_as_the_target_framework_can(framework, level):
    """plan --framework X for Llama 3 70B on 8 H100 (fits only with offload): the lightest level X
    expresses, and the export of that plan is accepted."""
    from planner.frameworks import DEFAULT_RECIPE
    from planner.search import SearchConstraints, search

    model, hw = load_model("llama3-70b"), load_hardware("h100-sxm-80gb")
    res = search(model, hw, 8, TrainingSpec(global_batch_size=64, seq_length=4096, recipe=DEFAULT_RECIPE[framework]),
                 SearchConstraints(framework=framework), top=5)
    for plan in res.plans:
        assert plan.training.offload.any
        assert refusal(framework, model, plan.training, plan.layout) is None
    best = res.best
    assert best.training.offload.describe() == level
    export_text(framework, Scenario(model=model, hardware=hw, gpus=8, training=best.training, layout=best.layout))


def test_deepspeed_zero3_export_overlaps_as_priced():
    """ZeRO-3 communication is priced prefetched under compute (planner/cost/analytic.py), so the export
    turns DeepSpeed's overlap_comm on for stage 3 even under the deepspeed recipe, whose ZeRO-1/2
    reductions are priced after the backward and exported with overlap_comm off."""
    from planner.exports.deepspeed import deepspeed_config
    from planner.specs import Layout, TrainingSpec

    trn = TrainingSpec(global_batch_size=64, recipe="deepspeed")
    assert trn.overlap_dp_comm is False
    assert deepspeed_config(trn, Layout(dp=8, zero_stage=3))["zero_optimization"]["overlap_comm"] is True
    assert deepspeed_config(trn, Layout(dp=8, zero_stage=1))["zero_optimization"]["overlap_comm"] is False
