"""Llama 3 405B's pre-training priced end to end (hwprofiles/data/llama3-405b-run.yaml, the stages,
batches and layouts of arXiv 2407.21783) against what Meta reports: 30.84M H100 GPU-hours (Llama 3.1
model card) within 10 %, and an effective training time above 90 % (Sec. 3.3.4)."""

from __future__ import annotations

import pytest

from planner.run.engine import price_run
from planner.run.loader import load_run_plan


@pytest.fixture(scope="module")
def result():
    return price_run(load_run_plan("llama3-405b"))


def test_gpu_hours_within_10_percent_of_the_reported(result):
    assert result.reference.gpu_hours == 30.84e6
    assert abs(result.totals.gpu_hours / 30.84e6 - 1) <= 0.10, result.totals.gpu_hours


def test_goodput_in_the_reported_band(result):
    assert 0.90 < result.totals.goodput < 1.0
    assert result.reference.goodput_in_band


def test_stages_follow_the_report(result):
    rows = result.stages
    assert [r.tokens_per_step for r in rows[:3]] == [4 * 2**20, 8 * 2**20, 16 * 2**20]  # 4M -> 8M -> 16M
    assert [r.seq_length for r in rows[3:7]] == [16384, 32768, 65536, 131072]
    assert sum(r.tokens for r in rows) == pytest.approx(15.6e12)
    assert sum(r.tokens for r in rows[3:7]) == pytest.approx(800e9)
    assert rows[2].layout.startswith("tp8 pp16 v4 dp128") and rows[2].gpus == 16384  # Table 4 row 2
    assert rows[6].layout.startswith("tp8 pp16 v4 dp8 cp16")  # Table 4 row 3
    assert all(r.fits for r in rows)


def test_failures_match_the_snapshot_rate(result):
    main = result.stages[2].reliability  # 16,384 GPUs: 419 unexpected interruptions in 54 days
    assert main.mtbf_h == pytest.approx(54 * 24 / 419, rel=1e-9)
    assert main.failures / (main.wall_s / 86400) == pytest.approx(419 / 54, rel=1e-9)
