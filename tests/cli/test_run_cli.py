"""``paraplan run``, ``--failure-rate`` / ``--checkpoint`` with ``--tokens``, ``simulate --straggler``,
and the straggler keys of whatif / sensitivity: output, JSON and bad input (exit 2, one line)."""

from __future__ import annotations

import json

import pytest

EST = ["estimate", "--model", "llama3-8b", "--hardware", "h100-sxm-80gb", "--gpus", "64", "--tp", "8",
       "--global-batch", "256", "--seq", "4096"]


def test_run_prints_stages_totals_reference_and_levers(run_cli):
    r = run_cli("run", "llama3-405b")
    assert r.exit_code == 0, r.stdout + r.stderr
    for text in ("initial 4M batch", "long context 128K", "goodput", "GPU-hours", "paraplan vs published",
                 "30.8M", "in band", "What saves days", "The largest lever", "Young 1974", "Daly 2006"):
        assert text in r.stdout, text


def test_run_json(run_cli):
    r = run_cli("run", "llama3-405b", "--set", "checkpoint=sync", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["checkpoint_mode"] == "sync" and data["settings"] == ["checkpoint=sync"]
    assert len(data["stages"]) == 8 and data["stages"][2]["reliability"]["mode"] == "sync"
    assert 0.9 < data["totals"]["goodput"] < 1 and data["levers"][0]["days_saved"] > 0


@pytest.mark.parametrize("args, field", [
    (["run", "no-such-plan"], "no-such-plan"), (["run", "llama3-405b", "--set", "bogus=1"], "--set"),
    (["run", "llama3-405b", "--set", "checkpoint_interval=-5"], "checkpoint.interval_s"),
])
def test_run_bad_input_exit_2(run_cli, args, field):
    r = run_cli(*args)
    assert r.exit_code == 2, r.stdout
    assert field in r.stderr and "Traceback" not in r.stderr


def test_tokens_with_failures_prints_goodput_interval_and_days_lost(run_cli):
    r = run_cli("plan", "--model", "llama3-8b", "--hardware", "h100-sxm-80gb", "--gpus", "64", "--global-batch",
                "256", "--seq", "4096", "--top", "2", "--tokens", "2T", "--failure-rate", "llama3",
                "--checkpoint", "async")
    assert r.exit_code == 0, r.stderr
    for text in ("With failures, restarts and checkpoints", "goodput", "days lost", "optimal, Daly 2006",
                 "Young 1974"):
        assert text in r.stdout, text


def test_tokens_with_failures_json(run_cli):
    r = run_cli(*EST, "--tokens", "2T", "--failure-rate", "1e-4", "--checkpoint", "sync",
                "--checkpoint-interval", "900s", "--json")
    assert r.exit_code == 0, r.stderr
    rel = json.loads(r.stdout)["reliability"]
    assert rel["interval_s"] == 900 and rel["mode"] == "sync" and rel["planned_rate_per_gpu_hour"] == 0
    assert rel["failure_rate_per_gpu_hour"] == 1e-4 and rel["goodput"] < 1


@pytest.mark.parametrize("extra, field", [
    (["--failure-rate", "llama3"], "--failure-rate"),  # no --tokens
    (["--tokens", "1T", "--failure-rate", "often"], "--failure-rate"),
    (["--tokens", "1T", "--failure-rate", "-1"], "--failure-rate"),
    (["--tokens", "1T", "--checkpoint", "maybe"], "--checkpoint"),
    (["--tokens", "1T", "--checkpoint-interval", "0"], "--checkpoint-interval"),
])
def test_failure_flags_bad_input(run_cli, extra, field):
    r = run_cli(*EST, *extra)
    assert r.exit_code == 2, r.stdout
    assert field in r.stderr and "Traceback" not in r.stderr


def test_checkpoint_on_a_profile_without_storage_is_refused(run_cli):
    r = run_cli("estimate", "--model", "llama3-8b", "--hardware", "mi300x", "--gpus", "8", "--tp", "8",
                "--global-batch", "64", "--seq", "4096", "--tokens", "1T", "--checkpoint", "async")
    assert r.exit_code == 2 and "storage" in r.stderr


def test_simulate_straggler_shows_the_slow_rank(run_cli, tmp_path):
    trace = tmp_path / "t.json"
    r = run_cli("simulate", *EST[1:], "--straggler", "rank=17,compute=0.8", "--trace", str(trace))
    assert r.exit_code == 0, r.stderr
    assert "straggler: slow rank 17" in r.stdout and "replica 2 sets the step" in r.stdout
    names = [e["args"]["name"] for e in json.loads(trace.read_text())["traceEvents"] if e.get("name") == "process_name"]
    assert names == ["stage 0 — slow: rank 17: compute 0.80"]


@pytest.mark.parametrize("extra", [["--straggler", "rank=64,compute=0.5"], ["--straggler", "rank=1,speed=2"],
                                   ["--rank-variation", "-0.1"]])
def test_simulate_straggler_bad_input(run_cli, extra):
    r = run_cli("simulate", *EST[1:], *extra)
    assert r.exit_code == 2, r.stdout
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_whatif_straggler_needs_the_simulator(run_cli):
    r = run_cli("whatif", *EST[1:], "--set", "straggler=rank=3,compute=0.8")
    assert r.exit_code == 2 and "--engine simulate" in r.stderr
    r = run_cli("whatif", *EST[1:], "--engine", "simulate", "--set", "straggler=rank=3,compute=0.8", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["variants"][0]["delta"]["step_time"] > 0.1


def test_sensitivity_lists_stragglers_with_the_simulator(run_cli):
    r = run_cli("sensitivity", *EST[1:], "--engine", "simulate", "--json")
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)["stragglers"]
    assert {row["setting"].split("=")[0] for row in rows} == {"straggler", "rank_variation"}
    assert all(row["delta"] > 0 for row in rows)
