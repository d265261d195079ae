"""``--tokens`` on plan and estimate: table rows, JSON key, bad input exit 2."""

from __future__ import annotations

import json

EST = ["estimate", "--model", "llama3-8b", "--hardware", "h100-sxm-80gb", "--gpus", "8", "--tp", "8",
       "--global-batch", "64", "--seq", "4096"]


def test_estimate_tokens_prints_budget(run_cli):
    r = run_cli(*EST, "--tokens", "15T")
    assert r.exit_code == 0, r.stdout
    for word in ("days", "GPU-hours", "MWh", "cost"):
        assert word in r.stdout


def test_estimate_tokens_json_has_budget(run_cli):
    r = run_cli(*EST, "--tokens", "15T", "--price-per-gpu-hour", "3", "--json")
    assert r.exit_code == 0, r.stdout
    data = json.loads(r.stdout)
    assert data["budget"]["tokens"] == 15e12 and data["budget"]["price_per_gpu_hour"] == 3
    assert data["step_time_s"] > 0


def test_plan_tokens_json_has_budget(run_cli):
    r = run_cli("plan", "--model", "llama3-8b", "--hardware", "h100-sxm-80gb", "--gpus", "8",
                "--global-batch", "64", "--seq", "4096", "--top", "2", "--tokens", "1T", "--json")
    assert r.exit_code == 0, r.stdout
    data = json.loads(r.stdout)
    assert data["budget"]["step_time_s"] == data["best"]["estimate"]["step_time_s"]


def test_bad_tokens_exit_2(run_cli):
    r = run_cli(*EST, "--tokens", "lots")
    assert r.exit_code == 2
    assert "--tokens" in r.stderr and "Traceback" not in r.stderr


def test_estimate_offload_flag_and_refusal(run_cli):
    base = ["estimate", "--model", "llama3-70b", "--hardware", "h100-sxm-80gb", "--gpus", "8", "--tp", "8",
            "--global-batch", "64", "--seq", "4096", "--sequence-parallel"]
    r = run_cli(*base, "--offload", "off:opt", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["fits"] and data["training"]["offload"]["optimizer"] is True
    bad = run_cli(*base, "--offload", "off:opt+grad")
    assert bad.exit_code == 2 and "cannot offload gradients" in bad.stderr
