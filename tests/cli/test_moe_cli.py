"""CLI of the MoE / expert-parallel features: ``model show`` of the imported configs, ``estimate`` with
ep, ``plan`` finding expert-parallel layouts, bad MoE input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

HF = Path(__file__).resolve().parents[1] / "data" / "hf"


@pytest.mark.parametrize(("folder", "total_b", "active_b"), [
    ("deepseek-v3", "671.03 B", "36.63 B"), ("mixtral-8x7b", "46.70 B", "12.88 B"),
    ("qwen3-30b-a3b", "30.53 B", "3.35 B"), ("gemma2-9b", "9.24 B", None), ("phi3-mini", "3.82 B", None)])
def test_model_show_prints_published_counts(run_cli, folder, total_b, active_b):
    res = run_cli("model", "show", str(HF / folder / "config.json"))
    assert res.exit_code == 0, res.stderr
    assert total_b in res.stdout
    if active_b:
        assert active_b in res.stdout


def test_model_show_json_moe_fields(run_cli):
    res = run_cli("model", "show", str(HF / "deepseek-v3" / "config.json"), "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["model"]["attention_kind"] == "mla" and data["model"]["num_dense_layers"] == 3
    assert data["parameters"]["dense_layer"]["mlp"] == 3 * 7168 * 18432


def test_estimate_with_ep_shows_where_the_all_to_all_time_goes(run_cli):
    res = run_cli("estimate", "-m", "qwen3-30b-a3b", "-H", "h100-sxm-80gb", "--gpus", "16", "--ep", "16",
                  "--etp", "1", "--global-batch", "64", "--seq", "4096", "--zero", "1")
    assert res.exit_code == 0, res.stderr
    assert "expert-parallel communication" in res.stdout and "moe.dispatch" in res.stdout
    assert "load imbalance 1" in res.stdout and "MFU counts active parameters" in res.stdout


def test_plan_finds_expert_parallel_layouts(run_cli):
    res = run_cli("plan", "-m", "qwen3-30b-a3b", "-H", "h100-sxm-80gb", "--gpus", "16", "--global-batch", "64",
                  "--seq", "4096", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["best"]["layout"]["ep"] > 1
    assert "moe.dispatch" in [r["name"] for r in data["expert_communication"]["rows"]]


@pytest.mark.parametrize("args", [
    ("--moe-dispatcher", "bogus"), ("--ep", "3"), ("--moe-imbalance", "0.5")])
def test_bad_moe_input_exits_2(run_cli, args):
    res = run_cli("estimate", "-m", "qwen3-30b-a3b", "-H", "h100-sxm-80gb", "--gpus", "48", "--global-batch", "48",
                  *args)
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr


def test_estimate_json_itemises_the_moe_layer(run_cli):
    res = run_cli("estimate", "-m", "qwen3-30b-a3b", "-H", "h100-sxm-80gb", "--gpus", "16", "--ep", "16",
                  "--global-batch", "64", "--seq", "4096", "--moe-imbalance", "1.2", "--json")
    assert res.exit_code == 0, res.stderr
    moe = json.loads(res.stdout)["moe"]
    kinds = {r["kind"] for r in moe["items"]}
    assert {"router", "permute", "grouped-gemm", "all-to-all", "imbalance", "host-sync"} <= kinds
    a2a = next(r for r in moe["items"] if r["name"] == "moe.dispatch")
    assert a2a["bytes_per_call"] > 0 and a2a["off_node_s"] > 0 and a2a["intra_node_s"] > 0  # ep16 spans 2 nodes
    imbalance = next(r for r in moe["items"] if r["kind"] == "imbalance")
    assert imbalance["seconds_per_step"] == moe["imbalance_s"] > 0


def test_torchtitan_prices_fsdp_with_expert_parallelism(run_cli):
    res = run_cli("estimate", "--model", "qwen3-30b-a3b", "--hardware", "h100-sxm-80gb", "--gpus", "8",
                  "--recipe", "torchtitan", "--zero", "3", "--ep", "8", "--micro-batch", "4", "--global-batch",
                  "256", "--seq", "4096", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert (data["layout"]["fsdp"] or data["layout"]["zero_stage"] == 3) and data["layout"]["ep"] == 8
    groups = {g["group"]: g for g in data["moe"]["groups"]}
    assert groups["dense"]["shard_ranks"] == 8 and groups["experts"]["shard_axis"] == "edp"
    assert {r["name"] for r in data["moe"]["sharding"]} >= {"params.allgather.fwd", "grads.reduce_scatter"}


def test_deepseek_v3_interleaved_split_is_printed(run_cli):
    res = run_cli("estimate", "-m", "deepseek-v3", "-H", "h100-sxm-80gb", "--gpus", "2048", "--pp", "4", "--vpp", "8",
                  "--ep", "64", "--etp", "1", "--global-batch", "16384", "--seq", "4096", "--recipe", "megatron-core",
                  "--json")
    assert res.exit_code == 0, res.stderr
    split = json.loads(res.stdout)["pipeline_split"]
    assert split.startswith("61 layers over pp4 x vpp8") and "layers per pipeline rank 15, 16, 16, 14" in split


def test_pipeline_layout_string_sets_the_split(run_cli):
    res = run_cli("estimate", "-m", "deepseek-v3", "-H", "h100-sxm-80gb", "--gpus", "1024", "--tp", "2", "--pp", "8",
                  "--vpp", "4", "--ep", "64", "--etp", "1", "--sequence-parallel", "--global-batch", "8192",
                  "--seq", "4096", "--recipe", "megatron-core", "--mtp-layers", "1", "--pipeline-layout",
                  "Et|(tt|)*30mL", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["layout"]["stage_layers"] == [7, 8, 8, 8, 8, 8, 8, 6]
    assert "'Et|(tt|)*30mL'" in data["pipeline_split"]


def test_bad_pipeline_layout_exits_2(run_cli):
    res = run_cli("estimate", "-m", "deepseek-v3", "-H", "h100-sxm-80gb", "--gpus", "1024", "--tp", "2", "--pp", "8",
                  "--vpp", "4", "--ep", "64", "--etp", "1", "--sequence-parallel", "--global-batch", "8192",
                  "--pipeline-layout", "Et|(tt|)*29L")
    assert res.exit_code == 2 and "--pipeline-layout" in res.stderr and "Traceback" not in res.stderr


def test_plan_finds_fsdp_with_expert_parallelism_for_torchtitan(run_cli):
    res = run_cli("plan", "-m", "qwen3-30b-a3b", "-H", "h100-sxm-80gb", "--gpus", "16", "--recipe", "torchtitan",
                  "--global-batch", "256", "--seq", "4096", "--json")
    assert res.exit_code == 0, res.stderr
    lay = json.loads(res.stdout)["best"]["layout"]
    assert lay["ep"] > 1 and (lay["fsdp"] or lay["zero_stage"] == 3)


def test_framework_none_prices_a_layout_no_framework_launches(run_cli):
    args = ("estimate", "-m", "deepseek-v3", "-H", "h800", "--gpus", "2048", "--pp", "16", "--ep", "64", "--etp", "1",
            "--zero", "1", "--global-batch", "15360", "--seq", "4096", "--precision", "fp8", "--moe-dispatcher",
            "deepep", "--moe-a2a-overlap", "--mtp-layers", "1", "--pipeline-layout", "E(tttt|)*15tmL",
            "--recipe", "megatron-core")
    refused = run_cli(*args)  # DualPipe's pp16 without virtual stages: Megatron's overlap needs vpp
    assert refused.exit_code == 2 and "vpp" in refused.stderr
    res = run_cli(*args, "--framework", "none", "--json")
    assert res.exit_code == 0, res.stderr
    assert 1300 < json.loads(res.stdout)["tokens_per_s"] / 2048 < 2000
