"""One calibration code path: ``calibrate`` that launches its own jobs reads their traces back exactly as
``calibrate --trace`` reads any job's, so both give the same overlay on the same traces."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("hta")

pytestmark = pytest.mark.validate


def test_launching_calibrate_and_trace_calibrate_give_the_same_overlay(run_cli, tmp_path):
    work = tmp_path / "work"
    launched = tmp_path / "launched.yaml"
    res = run_cli("calibrate", "--layout", "tp=2", "--layout", "pp=2", "--held-out", "dp=2,fsdp", "--repeats", "1",
                  "--steps", "2", "--warmup", "1", "--no-bench", "--workdir", work, "--out", launched, "--json")
    assert res.exit_code == 0, res.stderr
    first = json.loads(res.stdout)
    folders = sorted(work.glob("job_*/trace"))
    assert len(folders) == 3 and all(len(list(f.glob("rank_*.pt.trace.json.gz"))) == 2 for f in folders)
    traced = tmp_path / "traced.yaml"
    args = ["calibrate", "--held-out", "dp=2,fsdp", "--out", traced, "--json"]
    for f in folders:
        args += ["--trace", f]
    res = run_cli(*args)
    assert res.exit_code == 0, res.stderr
    second = json.loads(res.stdout)
    assert traced.read_text() == launched.read_text()
    assert first["layouts"] == second["layouts"] and first["classes"] == second["classes"]
    assert {r["layout"] for r in first["layouts"] if r["held_out"]} == {"tp=1,pp=1,dp=2,fsdp"}
    overlay = first["overlay"]
    assert overlay["calibration"]["fitted_layouts"] == ["tp=1,pp=2,dp=1,schedule=1f1b", "tp=2,pp=1,dp=1"]
    for path in ("kernel_overhead_us", "gemm_efficiency", "optimizer_params_per_s"):
        assert path in overlay["device"], path
    for path in ("collective_latency_us", "p2p_latency_us"):
        assert path in overlay["node"], path
