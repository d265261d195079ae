"""paraplan whatif / sweep / sensitivity: rendered output, --json, files, bad input -> exit 2."""

from __future__ import annotations

import csv
import json

import pytest

BASE = ["--model", "frontier-175b", "--hardware", "mi250x-frontier", "--gpus", "128", "--tp", "4", "--pp", "16",
        "--micro-batch", "1", "--global-batch", "64", "--zero", "1", "--recompute", "full", "--precision", "fp16",
        "--recipe", "deepspeed"]


def test_whatif_two_variants_json_matches_estimate(run_cli):
    r = run_cli("whatif", *BASE, "--set", "hardware.nic_bandwidth=x2", "--set", "layout.tp=8", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    est = json.loads(run_cli("estimate", *BASE, "--json").stdout)
    assert data["base"]["estimate"]["step_time_s"] == est["step_time_s"]
    assert [v["settings"] for v in data["variants"]] == [["hardware.nic_bandwidth=x2"], ["layout.tp=8"]]
    tp8 = json.loads(run_cli("estimate", *BASE, "--tp", "8", "--json").stdout)  # the last --tp wins
    assert data["variants"][1]["estimate"]["step_time_s"] == tp8["step_time_s"]
    assert data["variants"][1]["delta"]["step_time"] == pytest.approx(tp8["step_time_s"] / est["step_time_s"] - 1)


def test_whatif_table_shows_deltas_bottleneck_and_notes(run_cli):
    r = run_cli("whatif", *BASE, "--set", "layout.tp=8")
    assert r.exit_code == 0, r.stderr
    for text in ("base", "variant 1", "step time", "tokens/s", "MFU", "peak memory", "bottleneck",
                 "dp re-derived: 2 -> 1", "%)"):
        assert text in r.stdout


def test_whatif_flags_a_variant_that_no_longer_fits(run_cli):
    r = run_cli("whatif", *BASE, "--set", "hardware.hbm_capacity=8GiB")
    assert r.exit_code == 0, r.stderr
    assert "no longer fits" in r.stdout and "NO: over by" in r.stdout


def test_whatif_from_saved_scenario_file(run_cli, tmp_path):
    path = tmp_path / "v.json"
    r = run_cli("whatif", *BASE, "--set", "gpus=256", "--save", str(path))
    assert r.exit_code == 0, r.stderr
    r2 = run_cli("whatif", str(path), "--json")
    assert r2.exit_code == 0, r2.stderr
    assert json.loads(r2.stdout)["base"]["gpus"] == 256


@pytest.mark.parametrize("setting, words", [
    ("hardware.nic_bw=x2", ["unknown key", "hardware.nic_bandwidth", "--list-keys"]),
    ("hardware.nic_bandwidth=25GHz", ["cannot read", "25GB/s", "200Gb/s", "x2"]),
    ("layout.tp=7", ["tp(7)"]),
])
def test_bad_set_exits_2_with_one_clear_line(run_cli, setting, words):
    r = run_cli("whatif", *BASE, "--set", setting)
    assert r.exit_code == 2
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in r.stderr


def test_simulate_engine_unavailable_or_runs(run_cli):
    r = run_cli("whatif", *BASE, "--engine", "simulate", "--json")
    try:
        from simulate import simulate_estimate  # noqa: F401
    except ImportError:
        assert r.exit_code == 2 and "unavailable" in r.stderr
    else:
        assert r.exit_code == 0 and json.loads(r.stdout)["engine"] == "simulate"


def test_sweep_weak_table_csv_png_json(run_cli, tmp_path):
    csv_path, png_path = tmp_path / "s.csv", tmp_path / "s.png"
    args = ["sweep", *[a for a in BASE if a not in ("--gpus", "128")], "--vary", "gpus=128,256,512", "--mode", "weak"]
    r = run_cli(*args, "--csv", str(csv_path), "--png", str(png_path))
    assert r.exit_code == 0, r.stderr
    assert "scaling efficiency 128 -> 512 GPUs (weak)" in r.stdout
    rows = list(csv.DictReader(csv_path.open()))
    assert [int(row["global_batch"]) for row in rows] == [64, 128, 256]
    assert png_path.stat().st_size > 10_000
    data = json.loads(run_cli(*args, "--json").stdout)
    effs = [p["efficiency"] for p in data["points"]]
    assert effs[0] == 1.0 and all(0.5 < e <= 1.01 for e in effs)


def test_sweep_needs_vary_and_a_known_mode(run_cli):
    assert run_cli("sweep", *BASE).exit_code == 2
    r = run_cli("sweep", *BASE, "--vary", "gpus=128", "--mode", "diagonal")
    assert r.exit_code == 2 and "weak, strong" in r.stderr


def test_sweep_replan_replans_every_point(run_cli):
    r = run_cli("sweep", "--model", "gpt3-1.3b", "--hardware", "h100-sxm-80gb", "--global-batch", "64",
                "--vary", "gpus=8,16", "--mode", "strong", "--replan", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["replan"] is True
    assert [p["gpus"] for p in data["points"]] == [8, 16]
    assert all(p["layout"].startswith("tp") for p in data["points"])  # the planner's best layout per point


def test_sensitivity_ranked_with_headline(run_cli):
    r = run_cli("sensitivity", *BASE, "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    shares = [row["bound_share"] for row in data["hardware"]]
    assert shares == sorted(shares, reverse=True)
    assert data["headline"].startswith("Your step is") and "step time" in data["headline"]
    text = run_cli("sensitivity", *BASE).stdout
    assert "hardware parameters" in text and "model parameters" in text


def test_list_keys_names_short_names_and_fields(run_cli):
    r = run_cli("whatif", "--list-keys")
    assert r.exit_code == 0, r.stderr
    for key in ("tp = layout.tp", "micro_batch = training.micro_batch_size", "hardware.nic_bandwidth",
                "hardware.device.hbm_bandwidth_gbps", "gpus"):
        assert key in r.stdout


def test_sweep_short_name_and_short_unknown_key_error(run_cli):
    r = run_cli("sweep", *BASE, "--vary", "tp=2,4")
    assert r.exit_code == 0, r.stderr
    assert "tp2 pp16 dp4" in r.stdout and "tp4 pp16 dp2" in r.stdout
    bad = run_cli("sweep", *BASE, "--vary", "tpx=1,2")
    assert bad.exit_code == 2
    line = bad.stderr.strip()
    assert line.startswith("error: --vary: unknown key 'tpx'") and "\n" not in line and len(line) < 200
