"""CLI: paraplan estimate renders, dumps JSON with the documented keys, and refuses bad input."""

import json

import pytest

BASE = ["estimate", "--model", "frontier-175b", "--hardware", "mi250x-frontier", "--gpus", "128", "--tp", "4",
        "--pp", "16", "--micro-batch", "1", "--global-batch", "640", "--zero", "1", "--recompute", "full",
        "--precision", "fp16", "--recipe", "deepspeed"]


def test_json_keys(run_cli):
    r = run_cli(*BASE, "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    for key in ("step_time_s", "tokens_per_s", "model_tflops_per_gpu", "mfu", "hardware_tflops_per_gpu", "hfu",
                "fits", "memory", "time"):
        assert key in data
    assert set(data["time"]) == {"compute", "tp_comm", "cp_comm", "pp_bubble", "pp_comm", "dp_comm_exposed", "optimizer", "other"}
    stage = data["memory"][0]
    assert set(stage["breakdown"]) >= {"params", "grads", "optimizer", "activations", "buffers"}
    assert len(data["memory"]) == 16
    assert abs(sum(data["time"].values()) - data["step_time_s"]) < 1e-6 * data["step_time_s"]


def test_rich_view(run_cli):
    r = run_cli(*BASE)
    assert r.exit_code == 0, r.stderr
    assert "Step time breakdown" in r.stdout and "Peak memory" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["--tp", "5"], "gpus(128) % (tp(5)"),
    (["--global-batch", "641"], "global_batch"),
    (["--zero", "3"], "ZeRO-3"),
    (["--zero", "4"], "--zero"),
    (["--recompute", "most"], "none, selective, op, full"),
    (["--precision", "fp8"], "fp8"),
    (["--model", "frontier-176b"], "did you mean"),
    (["--hardware", "mi250"], "hardware"),
])
def test_bad_input_exits_2_with_one_line(run_cli, args, needle):
    argv = list(BASE)
    for i in range(0, len(args), 2):
        flag = args[i]
        if flag in argv:
            argv[argv.index(flag) + 1] = args[i + 1]
        else:
            argv += [flag, args[i + 1]]
    if "--tp" in args and "8" in args:
        argv = [a for a in argv]
    r = run_cli(*argv)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_interleaving_needs_layers_divisible(run_cli):
    r = run_cli("estimate", "--model", "frontier-22b", "--hardware", "mi250x-frontier", "--gpus", "16", "--pp", "8",
                "--vpp", "4", "--global-batch", "64")
    assert r.exit_code == 2 and "num_layers(48) % (pp(8) * vpp(4))" in r.stderr


def test_tp_must_divide_heads(run_cli):
    r = run_cli("estimate", "--model", "llama3-8b", "--hardware", "h100-sxm-80gb", "--gpus", "3", "--tp", "3",
                "--global-batch", "8")
    assert r.exit_code == 2 and "num_heads(32) % tp(3) = 2 != 0" in r.stderr


def test_engine_simulate_gives_the_same_schema(run_cli):
    args = ["estimate", "--model", "gpt3-1.3b", "--hardware", "h100-sxm-80gb", "--gpus", "8", "--tp", "2",
            "--pp", "2", "--global-batch", "16", "--json"]
    analytic = json.loads(run_cli(*args).stdout)
    r = run_cli(*args, "--engine", "simulate")
    assert r.exit_code == 0, r.stderr
    sim = json.loads(r.stdout)
    assert sim["engine"] == "simulate" and analytic["engine"] == "analytic"
    assert set(sim) == set(analytic)
    assert abs(sim["step_time_s"] / analytic["step_time_s"] - 1) < 0.2
