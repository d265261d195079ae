"""Run plans: loading, per-stage pricing through the estimate / search machinery, totals, levers, --set."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hwprofiles import load_hardware
from hwprofiles.loader import read_yaml
from planner.cost import estimate
from planner.errors import SpecError
from planner.run.engine import price_run
from planner.run.keys import apply_run_settings
from planner.run.loader import load_run_plan, run_plan_from_dict, shipped_run_plans
from planner.run.stages import stage_layout, stage_training

SMALL = {
    "name": "small", "model": "gpt3-1.3b", "hardware": "h100-sxm-80gb", "gpus": 16,
    "failures": {"rate_per_gpu_hour": 1e-4, "planned_rate_per_gpu_hour": 0},
    "stages": [
        {"name": "short", "tokens": "2B", "seq_length": 2048, "global_batch_size": 64,
         "layout": {"tp": 2, "pp": 2, "zero_stage": 1}},
        {"name": "long", "tokens": "1B", "seq_length": 4096, "global_batch_size": 32, "gpus": 8, "layout": "plan"},
    ],
}


def _numbers(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _numbers(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _numbers(v, f"{path}.{i}")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path


def test_shipped_plan_cites_every_number():
    data = read_yaml(shipped_run_plans()["llama3-405b"])
    sources = data["sources"]

    def covered(path):
        parts = path.split(".")
        return any(".".join(parts[:k]) in sources for k in range(len(parts), 0, -1))

    missing = [p for p in _numbers({k: v for k, v in data.items() if k not in ("sources", "version")})
               if not covered(p)]
    assert missing == []


def test_stage_is_priced_by_the_estimate_itself():
    plan = run_plan_from_dict(SMALL, "test")
    res = price_run(plan)
    row = res.stages[0]
    s = plan.stages[0]
    from hwprofiles import load_model

    model = load_model("gpt3-1.3b")
    est = estimate(model, load_hardware("h100-sxm-80gb"), stage_training(plan, s, s.layout),
                   stage_layout(model, s.layout, 16), 16)
    assert row.step_time_s == est.step_time_s  # no second formula
    assert row.steps == math.ceil(2e9 / (64 * 2048))
    assert row.useful_days == pytest.approx(row.steps * est.step_time_s / 86400)
    assert row.gpu_hours == pytest.approx(16 * row.reliability.wall_s / 3600)


def test_plan_stage_is_searched():
    res = price_run(run_plan_from_dict(SMALL, "test"))
    assert res.stages[1].planned and res.stages[1].gpus == 8


def test_totals_are_sums_and_goodput_is_their_ratio():
    res = price_run(run_plan_from_dict(SMALL, "test"))
    t = res.totals
    assert t.gpu_hours == pytest.approx(sum(r.gpu_hours for r in res.stages))
    assert t.goodput == pytest.approx(t.useful_days / t.wall_days)
    lost = t.failure_days + t.checkpoint_stall_days + t.planned_days
    assert t.wall_days - t.useful_days == pytest.approx(lost, rel=1e-9)
    assert t.energy_mwh == pytest.approx(t.gpu_hours * 700 * 1.1 / 1e6)


def test_levers_rank_the_days_saved():
    res = price_run(run_plan_from_dict(SMALL, "test"))
    saved = [lv.days_saved for lv in res.levers]
    assert saved == sorted(saved, reverse=True) and saved[0] > 0
    step = next(lv for lv in res.levers if lv.key == "step_time")
    assert step.days_saved > res.totals.useful_days / 2 * 0.99  # half of every step, and fewer failures
    assert res.levers[0].label in res.headline


def test_more_failures_cost_days():
    plan = run_plan_from_dict(SMALL, "test")
    hw = load_hardware("h100-sxm-80gb")
    base = price_run(plan).totals
    worse = price_run(apply_run_settings(plan, ["failure_rate=x10"], hw)).totals
    assert worse.wall_days > base.wall_days and worse.goodput < base.goodput


def test_settings_reach_defaults_and_stages():
    plan = load_run_plan("llama3-405b")
    hw = load_hardware("h100-sxm-80gb")
    out = apply_run_settings(plan, ["reschedule=x0.5", "storage.bandwidth=x2", "checkpoint=sync",
                                    "stages.2.tokens=10T", "failure_rate=meta-rsc1"], hw)
    assert out.failures.reschedule_s == 300.0
    assert out.storage.aggregate_write_gbps == 4000 and out.storage.node_write_gbps == 80
    assert out.checkpoint.mode == "sync" and out.stages[2].tokens == 10e12
    assert out.failures.rate_per_gpu_hour == "meta-rsc1"


@pytest.mark.parametrize("setting, match", [
    ("bogus=1", "unknown key"), ("checkpoint=maybe", "not one of"), ("stages.99.tokens=1T", "out of range"),
    ("failure_rate=often", "neither a number"), ("stages.2.layout.tp=1.5", "whole number"), ("x", "KEY=VALUE"),
])
def test_bad_settings_are_one_line_errors(setting, match):
    with pytest.raises(SpecError, match=match):
        apply_run_settings(load_run_plan("llama3-405b"), [setting], load_hardware("h100-sxm-80gb"))


def test_bad_stage_names_the_stage():
    bad = {**SMALL, "stages": [{**SMALL["stages"][0], "layout": {"tp": 3}}]}
    with pytest.raises(SpecError, match=r"stages\.0 \(short\)"):
        price_run(run_plan_from_dict(bad, "test"))


def test_unknown_plan_name_suggests_the_shipped_ones(tmp_path: Path):
    with pytest.raises(SpecError, match="llama3-405b"):
        load_run_plan("llama3-40b")
    (tmp_path / "p.yaml").write_text("name: x\n")
    with pytest.raises(SpecError, match="p.yaml"):
        load_run_plan(tmp_path / "p.yaml")


def test_no_checkpoints_means_restarting_from_scratch():
    plan = run_plan_from_dict({**SMALL, "checkpoint": {"mode": "none"}}, "test")
    res = price_run(plan)
    assert res.totals.checkpoint_stall_days == 0
    assert res.totals.goodput < price_run(run_plan_from_dict(SMALL, "test")).totals.goodput
