"""The shipped evidence table (planner/data/evidence.json) is what ``paraplan bench evidence --write``
builds now: a change of the cost model, a recipe, a profile or the measured data that moves any
prediction makes this test fail until the table is regenerated (one command)."""

from __future__ import annotations

import json

import pytest

from planner.bench.evidence import build_table, run_files, shipped_path, step_files, table_text
from planner.evidence import load_table

REGENERATE = "stale evidence table: regenerate it with `paraplan bench evidence --write`"


@pytest.fixture(scope="module")
def fresh():
    return build_table()


def test_the_shipped_table_is_a_fresh_regeneration(fresh):
    shipped = json.loads(shipped_path().read_text())
    now = json.loads(table_text(fresh))
    assert shipped["files"] == now["files"], REGENERATE
    assert len(shipped["rows"]) == len(now["rows"]), REGENERATE
    for old, new in zip(shipped["rows"], now["rows"]):
        where = f"{new['file']}#{new['row']}"
        for key in ("file", "row", "source", "model", "gpus", "layout", "layout_class"):
            assert old[key] == new[key], f"{where} {key}: {old[key]!r} -> {new[key]!r}; {REGENERATE}"
        for key, tol in (("error_pct", 0.011), ("predicted_mfu", 1.1e-4), ("measured_mfu", 1.1e-4)):
            assert abs(old[key] - new[key]) <= tol, f"{where} {key}: {old[key]} -> {new[key]}; {REGENERATE}"


def test_every_data_file_is_read():
    """Every *_runs.csv and *_train_steps.json under hwprofiles/data feeds the table, so a new file of
    measured runs is picked up by regeneration (and this test fails until it is)."""
    names = {f"hwprofiles/data/{p.name}" for p in run_files() + step_files()}
    assert set(load_table().files) == names, REGENERATE
    assert "hwprofiles/data/published_runs.csv" in names


def test_measured_mfu_is_the_prediction_over_one_plus_the_error(fresh):
    for r in fresh.rows:
        assert r.measured_mfu == pytest.approx(r.predicted_mfu / (1 + r.error_pct / 100), abs=2e-4)
