"""Trace format, memory timeline, jitter determinism, contention, CLI."""

from __future__ import annotations

import json

import pytest
from sim_scenarios import scenario

from simulate import run
from simulate.trace import trace_document, validate_trace


def test_trace_is_valid_chrome_trace():
    res = run(scenario(gb=16, pp=4, dp=2, zero_stage=1), trace=True)
    doc = json.loads(json.dumps(trace_document(res.trace_events, 4, "t")))
    assert validate_trace(doc) == []
    phases = {e["ph"] for e in doc["traceEvents"]}
    assert {"X", "s", "f", "M"} <= phases
    names = {e["name"].split(" ")[0] for e in doc["traceEvents"] if e["ph"] == "X"}
    assert {"forward", "backward", "send"} <= names


def test_validator_catches_broken_flows():
    bad = {"traceEvents": [{"name": "p2p", "ph": "s", "id": 1, "pid": 0, "tid": 0, "ts": 5.0},
                           {"name": "x", "ph": "X", "pid": 0, "tid": 0, "ts": -1, "dur": 1}]}
    problems = validate_trace(bad)
    assert any("flow 1" in p for p in problems) and any("ts" in p for p in problems)


@pytest.mark.parametrize("schedule", ["1f1b", "gpipe", "zb-h1"])
def test_memory_peak_per_stage_equals_analytic(schedule):
    sc = scenario(gb=16, pp=4, dp=2, zero_stage=1, schedule=schedule)
    res = run(sc)
    analytic = sc.estimate()
    for tl, sim_mem, an in zip(res.memory, res.estimate.memory, analytic.memory):
        assert tl.peak_bytes == pytest.approx(an.peak_bytes, rel=1e-9)
        assert max(b for _, b in tl.points) <= res.estimate.peak_memory_bytes * (1 + 1e-12)
        assert sim_mem.peak_bytes == pytest.approx(an.peak_bytes, rel=1e-9)


def test_interleaved_stage0_memory_equals_analytic():
    sc = scenario(gb=16, pp=4, vpp=2, schedule="interleaved-1f1b")
    res = run(sc)
    assert res.memory[0].peak_bytes == pytest.approx(sc.estimate().memory[0].peak_bytes, rel=1e-9)


def test_jitter_deterministic_for_seed_and_percentiles_ordered():
    sc = scenario(gb=16, pp=4, dp=2, zero_stage=1)
    a = run(sc, jitter=0.1, samples=5, seed=7)
    b = run(sc, jitter=0.1, samples=5, seed=7)
    c = run(sc, jitter=0.1, samples=5, seed=8)
    assert a.step_times == b.step_times and a.step_times != c.step_times
    p = a.percentiles
    assert p["p10"] <= p["p50"] <= p["p90"] and p["p10"] < p["p90"]


def test_contention_never_speeds_up_when_nics_are_shared_as_priced():
    sc = scenario(hw="mi250x-frontier", gb=64, tp=4, pp=4, dp=2, zero_stage=1)
    free = run(sc, contention=False).estimate.step_time_s
    shared = run(sc, contention=True).estimate.step_time_s
    assert shared >= free * (1 - 1e-9)


def test_cli_json_and_trace(run_cli, tmp_path):
    trace = tmp_path / "t.json"
    r = run_cli("simulate", "--model", "gpt3-1.3b", "--hardware", "h100-sxm-80gb", "--gpus", "8", "--tp", "2",
                "--pp", "4", "--global-batch", "16", "--trace", trace, "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["estimate"]["engine"] == "simulate" and out["folded_by_symmetry"]
    assert validate_trace(json.loads(trace.read_text())) == []


@pytest.mark.parametrize("args", [("--schedule", "zigzag"), ("--pp", "4", "--vpp", "5")])
def test_cli_bad_input_exit_2(run_cli, args):
    r = run_cli("simulate", "--model", "gpt3-1.3b", "--hardware", "h100-sxm-80gb", "--gpus", "8",
                "--global-batch", "16", *args)
    assert r.exit_code == 2
    assert "Traceback" not in r.stderr and r.stderr.strip()
