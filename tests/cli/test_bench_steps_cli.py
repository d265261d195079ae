"""``paraplan bench steps [FILE]``: table, JSON, a custom file, bad input (exit 2, one line)."""

from __future__ import annotations

import json

from planner.bench.steps import DEFAULT_FILE


def test_json_report_per_case_and_summary(run_cli):
    res = run_cli("bench", "steps", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["recipe"] == "torch-amp" and data["hardware"] == "h200-sxm-141gb"
    assert len(data["cases"]) == 22 and data["within_targets"] is True
    case = data["cases"][0]
    assert {"time_error_pct", "memory_error_pct", "reserved_error_pct", "peak_at", "host_bound"} <= set(case)


def test_table_names_host_bound_cases_with_the_reason(run_cli):
    res = run_cli("bench", "steps")
    assert res.exit_code == 0, res.stderr
    assert "median |time error|" in res.stdout and "host-bound:" in res.stdout


def test_a_custom_file_with_two_steps(run_cli, tmp_path):
    data = json.loads(DEFAULT_FILE.read_text())
    data["steps"] = data["steps"][6:8]
    path = tmp_path / "steps.json"
    path.write_text(json.dumps(data))
    res = run_cli("bench", "steps", str(path), "--json")
    assert res.exit_code == 0, res.stderr
    assert len(json.loads(res.stdout)["cases"]) == 2


def test_bad_file_is_exit_2_with_one_line(run_cli, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"env": {"name": "NVIDIA H200"}, "steps": [{"model": "x"}]}))
    res = run_cli("bench", "steps", str(path))
    assert res.exit_code == 2
    assert "lacks" in res.stderr and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
