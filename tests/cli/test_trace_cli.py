"""``paraplan trace compare`` on real GPU traces (HolisticTraceAnalysis's test data, tests/data/traces) and on
bad input: a truncated or foreign trace is one line, exit 2."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

pytest.importorskip("hta")

TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"
A100 = ["trace", "compare", str(TRACES / "hta-a100-ddp"), "--model", "gpt3-125m", "--layout", "dp=2", "--gpus", "2",
        "--seq", "1024", "--micro-batch", "8", "--hardware", "a100-sxm-40gb"]


def test_compare_a100_trace_prints_classes_and_mismatches(run_cli):
    res = run_cli(*A100)
    assert res.exit_code == 0, res.stderr
    assert "per op class" in res.stdout and "largest mismatches:" in res.stdout
    assert "comm:all-reduce" in res.stdout and "gemm" in res.stdout and "idle" in res.stdout
    assert "1 of 2 ranks traced" in res.stdout


def test_compare_json_has_the_same_rows(run_cli):
    data = json.loads(run_cli(*A100, "--json").stdout)
    kinds = {c["kind"] for c in data["classes"]}
    assert {"gemm", "conv", "comm:all-reduce", "idle"} <= kinds
    assert data["device"] == "NVIDIA A100-PG509-200" and data["steps"] == 3 and data["ranks"] == 1
    assert len(data["mismatches"]) == 3 and data["measured_step_s"] > 0
    assert data["stages"][0]["comm_overlapped_s"] > 0  # NCCL kernels ran under compute


def test_compare_rocm_trace(run_cli):
    res = run_cli("trace", "compare", str(TRACES / "hta-mi250"), "--model", "gpt3-125m", "--layout", "tp=1",
                  "--seq", "128", "--hardware", "mi250x-frontier", "--json")
    assert res.exit_code == 0, res.stderr
    kinds = {c["kind"]: c for c in json.loads(res.stdout)["classes"]}
    assert kinds["gemm"]["measured_ops"] > 0  # rocBLAS Cijk_ kernels, launched on stream 0


def test_gpu_trace_needs_a_hardware_profile(run_cli):
    res = run_cli(*A100[:-2])
    assert res.exit_code == 2 and "--hardware: the trace ran on 'NVIDIA A100-PG509-200'" in res.stderr


@pytest.mark.parametrize("kind", ["truncated", "foreign", "empty-folder", "no-steps"])
def test_bad_traces_are_one_line_exit_2(run_cli, tmp_path, kind):
    folder = tmp_path / kind
    folder.mkdir()
    if kind == "truncated":
        data = (TRACES / "hta-mi250" / "rank_0.json.gz").read_bytes()
        (folder / "rank_0.json.gz").write_bytes(data[: len(data) // 2])
    elif kind == "foreign":
        (folder / "rank_0.json").write_text(json.dumps({"hello": [1, 2, 3]}))
    elif kind == "no-steps":
        with gzip.open(folder / "rank_0.json.gz", "wt") as fh:
            json.dump({"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1,
                                        "ts": 0, "dur": 5}]}, fh)
    res = run_cli("trace", "compare", str(folder), "--model", "gpt3-125m", "--layout", "tp=1")
    assert res.exit_code == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr


def test_missing_trace_reader_says_how_to_install(run_cli, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "hta" else real(name, *a))
    res = run_cli(*A100)
    assert res.exit_code == 2 and "pip install 'paraplan[trace]'" in res.stderr


def test_user_trace_needs_model_and_layout(run_cli):
    res = run_cli("trace", "compare", str(TRACES / "hta-mi250"), "--layout", "tp=1", "--hardware", "mi250x-frontier")
    assert res.exit_code == 2 and "--model: the model of the traced job is required" in res.stderr
