"""``paraplan bench accuracy``: table and JSON output, custom CSV and hardware map, bad input."""

from __future__ import annotations

import csv
import json

from planner.bench.accuracy import default_csv


def _write_rows(path, row_ids, **changes):
    with default_csv().open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames
        rows = [dict(r, **changes) for r in reader if r["row_id"] in row_ids]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_json_report_has_rows_skipped_and_summary(run_cli):
    res = run_cli("bench", "accuracy", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert set(data) == {"csv", "rows", "skipped", "skipped_reasons", "summary"}
    full = [r for r in data["rows"] if r["fully_stated"] and not r["moe"]]
    assert data["summary"]["fully_stated"]["rows"] == len(full) > 0
    assert all(r["defaults_used"] == [] for r in full)
    assert sum(data["skipped_reasons"].values()) == len(data["skipped"])
    assert {"a100-sxm-80gb", "h100-sxm-80gb"} <= set(data["summary"]["by_hardware"])
    row = next(r for r in data["rows"] if r["row_id"] == "34")
    assert row["compared"] == "step_time" and row["convention"] == "bigscience"
    assert row["error_pct"] == (row["measured_step_s"] / row["predicted_step_s"] - 1) * 100


def test_table_shows_rows_summary_and_skipped(run_cli):
    res = run_cli("bench", "accuracy")
    assert res.exit_code == 0, res.stderr
    for text in ("fully stated dense rows", "korthikanti2022", "skipped rows", "V100"):
        assert text in res.stdout


def test_custom_csv_and_hardware_map(run_cli, tmp_path):
    path = _write_rows(tmp_path / "runs.csv", {"26", "142"})
    plain = json.loads(run_cli("bench", "accuracy", str(path), "--json").stdout)
    assert [r["row_id"] for r in plain["rows"]] == ["26"]
    assert [s["row_id"] for s in plain["skipped"]] == ["142"]
    mapped = _write_rows(tmp_path / "mapped.csv", {"26"}, hardware="V100-SXM3")
    res = run_cli("bench", "accuracy", str(mapped), "--hardware-map", "V100=a100-sxm-80gb", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["rows"][0]["hardware"] == "a100-sxm-80gb"


def test_bad_hardware_map_exits_2(run_cli):
    res = run_cli("bench", "accuracy", "--hardware-map", "V100")
    assert res.exit_code == 2
    assert "--hardware-map" in res.stderr and "PREFIX" in res.stderr


def test_unknown_profile_in_hardware_map_exits_2(run_cli):
    res = run_cli("bench", "accuracy", "--hardware-map", "V100=no-such-gpu")
    assert res.exit_code == 2
    assert "no-such-gpu" in res.stderr


def test_missing_csv_exits_2(run_cli, tmp_path):
    res = run_cli("bench", "accuracy", str(tmp_path / "none.csv"))
    assert res.exit_code == 2
    assert "none.csv" in res.stderr and "Traceback" not in res.stderr


def test_csv_without_required_columns_exits_2(run_cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("row_id,model\n1,x\n")
    res = run_cli("bench", "accuracy", str(path))
    assert res.exit_code == 2
    assert "missing columns" in res.stderr
