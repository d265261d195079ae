"""`plan --framework` / `--export`: plain exports on stdout, launch folders, and plan, estimate and
simulate agreeing on what a framework refuses (issue 14)."""

from __future__ import annotations

import json
import subprocess

SMALL = ["--model", "gpt3-1.3b", "--hardware", "a100-sxm-80gb", "--gpus", "8", "--global-batch", "32",
         "--max-tp", "2", "--micro-batch", "1"]
L70 = ["--model", "llama3-70b", "--hardware", "h100-sxm-80gb", "--gpus", "64", "--global-batch", "128",
       "--seq", "8192"]


def test_export_json_on_stdout_is_plain_json(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = run_cli("plan", *SMALL, "--export", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)  # nothing but the export on stdout, unwrapped at 80 columns
    assert doc["kind"] == "paraplan-scenario"
    assert "Best plan" in r.stderr  # the tables went to stderr


def test_export_torchtitan_reproduces_micro_batch_and_accumulation(run_cli):
    r = run_cli("plan", *L70, "--export", "torchtitan", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    best, text = data["best"], data["export"]["text"]
    assert data["export"]["framework"] == "torchtitan"
    mb, m = best["training"]["micro_batch_size"], best["estimate"]["micro_batches"]
    if best["layout"]["pp"] == 1:
        assert f"config.training.local_batch_size = {mb}" in text
        assert 128 // (mb * best["layout"]["dp"]) == m
    else:
        assert f"config.training.local_batch_size = {mb * m}" in text
    assert best["layout"]["zero_stage"] in (0, 3) or best["layout"]["fsdp"]  # torchtitan has no ZeRO-1/2


def test_out_dir_writes_config_and_a_bash_clean_launch_script(run_cli, tmp_path):
    out = tmp_path / "run"
    r = run_cli("plan", *SMALL, "--export", "megatron", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["launch.sh", "megatron_args.sh"]
    for p in out.iterdir():
        subprocess.run(["bash", "-n", str(p)], check=True)
    assert "torchrun --nnodes 1 --nproc-per-node 8" in (out / "launch.sh").read_text()


def test_framework_filter_proposes_only_launchable_layouts(run_cli):
    from hwprofiles import load_model
    from planner.frameworks import refusal
    from planner.specs import Layout, TrainingSpec

    r = run_cli("plan", "--model", "frontier-175b", "--hardware", "mi250x-frontier", "--gpus", "1024",
                "--global-batch", "640", "--framework", "megatron", "--top", "10", "--json")
    assert r.exit_code == 0, r.stderr
    model = load_model("frontier-175b")
    for p in json.loads(r.stdout)["plans"]:
        assert refusal("megatron", model, TrainingSpec(**p["training"]), Layout(**p["layout"])) is None


def test_plan_estimate_and_simulate_refuse_with_the_same_reason(run_cli):
    """Frontier 175B, tp8 pp8 vpp6 with 20 micro-batches: Megatron's interleaved schedule refuses it."""
    lay = ["--model", "frontier-175b", "--hardware", "mi250x-frontier", "--gpus", "512", "--tp", "8", "--pp", "8",
           "--vpp", "6", "--global-batch", "160", "--micro-batch", "1", "--recompute", "full"]
    reasons = []
    for cmd in ("estimate", "simulate"):
        r = run_cli(cmd, *lay, "--framework", "megatron")
        assert r.exit_code == 2, (cmd, r.stdout)
        reasons.append(r.stderr.split("refuses this layout: ", 1)[1].strip())
    assert reasons[0] == reasons[1] and "micro_batches(20) % pp(8) = 4 != 0" in reasons[0]
    p = run_cli("plan", "--model", "frontier-175b", "--hardware", "mi250x-frontier", "--gpus", "512",
                "--global-batch", "160", "--pp", "8", "--schedule", "interleaved-1f1b", "--framework", "megatron",
                "--json")
    if p.exit_code == 0:  # whatever it proposes, Megatron's rule accepts
        for plan in json.loads(p.stdout)["plans"]:
            assert plan["estimate"]["micro_batches"] % plan["layout"]["pp"] == 0
    ref = run_cli("plan", "--model", "frontier-175b", "--hardware", "mi250x-frontier", "--gpus", "512",
                  "--global-batch", "160", "--framework", "megatron", "--reference",
                  "tp=8,pp=8,vpp=6,zero=1,micro-batch=1,recompute=full")
    assert ref.exit_code == 2 and ref.stderr.split("refuses this layout: ", 1)[1].strip() == reasons[0]
    ok = run_cli("estimate", *lay, "--framework", "torchtitan")
    assert ok.exit_code == 2 and "model frontier-175b has layernorm" in ok.stderr


def test_zero3_with_pipeline_by_recipe(run_cli):
    base = ["estimate", "--model", "llama3-70b", "--hardware", "h100-sxm-80gb", "--gpus", "64", "--tp", "4",
            "--pp", "2", "--zero", "3", "--global-batch", "128", "--seq", "8192", "--recompute", "full"]
    assert run_cli(*base, "--recipe", "fsdp").exit_code == 0
    r = run_cli(*base, "--recipe", "deepspeed")
    assert r.exit_code == 2 and "ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism" in r.stderr
    assert "deepspeed/runtime/pipe/engine.py:76-77" in r.stderr


def test_llama31_405b_runs_the_llama3_layout(run_cli):
    r = run_cli("estimate", "--model", "llama3.1-405b", "--hardware", "h100-sxm-80gb", "--gpus", "16384",
                "--tp", "8", "--pp", "16", "--vpp", "4", "--zero", "1", "--global-batch", "2048", "--seq", "8192",
                "--recompute", "selective", "--json")
    assert r.exit_code == 0, r.stderr
    layers = [s["layers"] for s in json.loads(r.stdout)["memory"]]
    assert layers[0] == 7 and layers[-1] == 7 and set(layers[1:-1]) == {8} and sum(layers) == 126


def test_recipe_alone_does_not_apply_the_export_model_rule(run_cli):
    """torchtitan's llama3-architecture rule is about what the export can describe: a torchtitan-recipe
    plan of GPT-3 1.3B (LayerNorm, GeLU, biases) is priced; asking for the torchtitan framework (or its
    export) refuses the model. (Llama 2 7B, of the llama3 architecture, now exports: issue 25.)"""
    base = ("plan", "--model", "gpt3-1.3b", "--hardware", "a100-sxm-80gb", "--gpus", "64", "--global-batch",
            "512", "--seq", "2048", "--json")
    res = run_cli(*base, "--recipe", "torchtitan")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["plans"][0]["layout"]["fsdp"]
    res = run_cli(*base, "--recipe", "torchtitan", "--framework", "torchtitan")
    assert res.exit_code == 1 and "no valid layout" in res.stderr
    assert "model removed" in " ".join(res.stderr.split())  # the rule is named (issue 25)


def test_estimate_refuses_an_offload_level_the_framework_cannot_express_as_plan_skips_it(run_cli):
    """DeepSpeed's offload_optimizer moves gradients too: estimate --framework deepspeed --offload
    off:opt is refused with the sentence the search uses to skip that level (planner.frameworks.offload)."""
    base = ["estimate", "--model", "llama3-70b", "--hardware", "h100-sxm-80gb", "--gpus", "8", "--tp", "2",
            "--fsdp", "--global-batch", "64", "--seq", "4096", "--sequence-parallel", "--framework", "deepspeed",
            "--recipe", "deepspeed"]
    bad = run_cli(*base, "--offload", "off:opt")
    assert bad.exit_code == 2 and "offload_optimizer also accumulates the gradients" in bad.stderr
    assert "[deepspeed/runtime/engine.py" in bad.stderr and "Traceback" not in bad.stderr
    ok = run_cli(*base, "--offload", "off:opt+grad", "--json")
    assert ok.exit_code == 0, ok.stderr
    plan = run_cli("plan", "--model", "llama3-70b", "--hardware", "h100-sxm-80gb", "--gpus", "8", "--global-batch",
                   "64", "--seq", "4096", "--framework", "deepspeed", "--json")
    assert plan.exit_code == 0, plan.stderr
    assert json.loads(plan.stdout)["best"]["training"]["offload"] == {
        "optimizer": True, "gradients": True, "params": False, "activations": False}
