"""Published-run tolerance: paraplan's error against the shipped published_runs.csv must not grow.

The data (hwprofiles/data/published_runs.csv, citations per row and in PUBLISHED_RUNS.md) are
published measured training runs; the recorded figure and the command that reproduces it are in
tests/golden/accuracy_baseline.json. No per-row or per-source correction may enter a prediction.
"""

from __future__ import annotations

import csv
import inspect
import json
from pathlib import Path

import pytest

from planner.bench.accuracy import GroupStats, default_csv, group_stats, predict, run_accuracy

BASELINE = json.loads((Path(__file__).parent / "accuracy_baseline.json").read_text())


@pytest.fixture(scope="module")
def report():
    return run_accuracy()


def _dense(report, keep) -> GroupStats:
    """Error statistics of the dense rows that ``keep`` selects (the MoE rows have their own ratchet,
    tests/golden/test_moe_accuracy.py)."""
    return group_stats(r.error_pct for r in report.rows if not r.moe and keep(r))


def test_fully_stated_median_error_does_not_grow_past_the_recorded_figure(report):
    stats = _dense(report, lambda r: r.fully_stated)
    assert stats.rows >= BASELINE["fully_stated_rows"] - 2  # the check is not vacuous
    limit = BASELINE["median_abs_error_pct"] + BASELINE["tolerance_points"]
    assert stats.median_abs_error_pct <= limit, (
        f"median |error| over fully-stated rows {stats.median_abs_error_pct:.1f}% > recorded "
        f"{BASELINE['median_abs_error_pct']}% + {BASELINE['tolerance_points']} points ({BASELINE['command']})"
    )


@pytest.mark.parametrize("group", ["all_rows", "h100"])
def test_all_rows_and_h100_medians_do_not_grow_past_the_recorded_figures(report, group):
    pinned = BASELINE[group]
    stats = report.summary.all_rows if group == "all_rows" else _dense(report, lambda r: r.hardware == "h100-sxm-80gb")
    assert stats.rows >= pinned["rows"] - 2  # the check is not vacuous
    limit = pinned["median_abs_error_pct"] + BASELINE["tolerance_points"]
    assert stats.median_abs_error_pct <= limit, (
        f"{group}: median |error| {stats.median_abs_error_pct:.1f}% > recorded {pinned['median_abs_error_pct']}% + "
        f"{BASELINE['tolerance_points']} points ({pinned['command']})")


def test_the_prediction_path_sees_only_the_scenario():
    params = list(inspect.signature(predict).parameters)
    assert params == ["scenario"]


def test_row_id_and_source_do_not_change_a_prediction(tmp_path):
    with default_csv().open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames
        row = next(r for r in reader if r["source_id"] == "korthikanti2022")
    other = dict(row, row_id="9999", source_id="someone_else", source="Another paper",
                 source_locator="Table 9", provenance="exact_table")
    path = tmp_path / "twins.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows([row, other])
    a, b = run_accuracy(path).rows
    assert (a.row_id, b.row_id) == (row["row_id"], "9999")
    assert a.predicted_step_s == b.predicted_step_s
    assert a.error_pct == b.error_pct


def test_every_shipped_hardware_with_a_stated_run_is_predicted(report):
    predicted = {r.hardware for r in report.rows}
    assert {"a100-sxm-80gb", "a100-sxm-40gb", "h100-sxm-80gb"} <= predicted
    assert all(s.reason for s in report.skipped)


def test_rows_beyond_25_percent_name_their_known_gap(report):
    """Issue 22: a row off by more than 25 % carries the reason the output names (planner/bench/gaps.py)."""
    from planner.bench.gaps import WORSE_THAN

    for r in report.rows:
        named = [f for f in r.flags if f.startswith(("time ", "memory ")) and " %: " in f]
        assert bool(named) == (abs(r.error_pct) > WORSE_THAN), (r.row_id, r.flags)
        assert all("unexplained" not in f for f in named), (r.row_id, named)


def test_a_recipe_family_groups_a_recipe_with_its_releases(report):
    """The eleven rows the `deepspeed` recipe priced before its 2021 release recipe existed (issue 22: 46.8 %)
    are one family again, as are the FSDP1 stacks (fsdp1 with llm-foundry's releases, the whole ``base:`` chain);
    a family of one recipe is not repeated."""
    fam = report.summary.by_recipe_family
    assert fam["deepspeed"].rows == (report.summary.by_recipe["deepspeed"].rows
                                     + report.summary.by_recipe["deepspeed-2021"].rows) == 11
    assert fam["fsdp1"].rows == report.summary.by_recipe["fsdp1"].rows + report.summary.by_recipe["llm-foundry-2309"].rows
    assert fam["deepspeed"].median_abs_error_pct <= 20.0  # issue 22's limit for these rows
    assert "megatron-core" not in fam
