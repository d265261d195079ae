"""Run budget (planner.cost.budget): days, GPU-hours, energy and cost from a step time."""

from __future__ import annotations

import math

import pytest

from hwprofiles import load_hardware, load_model
from planner.cost import estimate
from planner.cost.budget import DEFAULT_PRICE_PER_GPU_HOUR, DEFAULT_PUE, run_budget
from planner.errors import SpecError
from planner.specs import Layout, TrainingSpec
from planner.units import parse_count


@pytest.fixture(scope="module")
def est_hw():
    hw = load_hardware("h100-sxm-80gb")
    model = load_model("llama3-8b")
    training = TrainingSpec(global_batch_size=64, seq_length=4096)
    return estimate(model, hw, training, Layout(tp=8, dp=1), 8), hw


def test_parse_count_suffixes():
    assert parse_count("15T") == 15e12
    assert parse_count("2.5B") == 2.5e9
    assert parse_count("300M") == 300e6
    assert parse_count("1e12") == 1e12
    with pytest.raises(SpecError, match="--tokens"):
        parse_count("15 tokens", field="--tokens")


def test_budget_arithmetic(est_hw):
    est, hw = est_hw
    tokens = 1e12
    b = run_budget(est, tokens, hw)
    steps = math.ceil(tokens / (64 * 4096))
    assert b.steps == steps
    assert b.wall_time_s == pytest.approx(steps * est.step_time_s)
    assert b.days == pytest.approx(b.wall_time_s / 86400)
    assert b.gpu_hours == pytest.approx(8 * b.wall_time_s / 3600)
    assert b.power_per_gpu_w == 700  # the profile's TDP
    assert b.energy_mwh == pytest.approx(b.gpu_hours * 700 * DEFAULT_PUE / 1e6)
    assert b.cost_usd == pytest.approx(b.gpu_hours * DEFAULT_PRICE_PER_GPU_HOUR)
    assert any("PUE" in a for a in b.assumptions) and any("700 W" in a for a in b.assumptions)


def test_user_inputs_override_defaults(est_hw):
    est, hw = est_hw
    b = run_budget(est, 1e12, hw, price_per_gpu_hour=3.0, power_per_gpu_w=500, pue=1.5)
    assert b.cost_usd == pytest.approx(b.gpu_hours * 3.0)
    assert b.energy_mwh == pytest.approx(b.gpu_hours * 500 * 1.5 / 1e6)
    assert b.assumptions == []


def test_profile_without_power_gives_no_energy(est_hw):
    est, hw = est_hw
    bare = hw.model_copy(update={"device": hw.device.model_copy(update={"tdp_w": None})})
    b = run_budget(est, 1e12, bare)
    assert b.energy_mwh is None and any("no device.tdp_w" in a for a in b.assumptions)


@pytest.mark.parametrize("kw,field", [({"pue": 0.9}, "--pue"), ({"price_per_gpu_hour": -1}, "--price-per-gpu-hour")])
def test_bad_inputs_name_the_field(est_hw, kw, field):
    est, hw = est_hw
    with pytest.raises(SpecError, match=field):
        run_budget(est, 1e12, hw, **kw)
