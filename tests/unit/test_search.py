"""planner.search: the best plan fits, ranking is deterministic, constraints hold, numbers come from
planner.cost, infeasible jobs raise InfeasibleError with a computed way out."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware, load_model
from planner.cost import estimate
from planner.errors import InfeasibleError, SpecError
from planner.search import SearchConstraints, search, stage_split, tp_degrees
from planner.search import resimulate as refine_mod
from planner.specs import Layout, TrainingSpec

SMALL = dict(max_tp=2, micro_batch=1)


@pytest.fixture(scope="module")
def setup():
    return load_model("gpt3-1.3b"), load_hardware("a100-sxm-80gb"), TrainingSpec(global_batch_size=32)


@pytest.fixture(scope="module")
def result(setup):
    model, hw, trn = setup
    return search(model, hw, 8, trn, SearchConstraints(**SMALL), top=5)


def test_best_plan_fits(result):
    best = result.best
    assert best.estimate.fits
    assert best.estimate.peak_memory_bytes <= best.usable_memory_bytes


def test_ranking_is_by_throughput_and_deterministic(setup, result):
    model, hw, trn = setup
    again = search(model, hw, 8, trn, SearchConstraints(**SMALL), top=5)
    assert [p.label for p in again.plans] == [p.label for p in result.plans]
    tps = [p.estimate.tokens_per_s for p in result.plans]
    assert tps == sorted(tps, reverse=True)
    assert [p.rank for p in result.plans] == list(range(1, len(result.plans) + 1))


def test_numbers_come_from_the_cost_model(setup, result):
    model, hw, _ = setup
    best = result.best
    est = estimate(model, hw, best.training, best.layout, best.gpus)
    assert est.step_time_s == best.estimate.step_time_s
    assert est.peak_memory_bytes == best.estimate.peak_memory_bytes


def test_constraints_are_honoured(setup):
    model, hw, trn = setup
    r = search(model, hw, 8, trn, SearchConstraints(max_tp=2, pp=2, zero=1, micro_batch=2, recompute="full"))
    for p in r.plans:
        assert p.layout.tp <= 2 and p.layout.pp == 2 and p.layout.zero_stage == 1
        assert p.training.micro_batch_size == 2 and p.training.recompute == "full"
    assert r.stats.rejected["constraint"] > 0


def test_memory_headroom_lowers_usable_memory(setup, result):
    model, hw, trn = setup
    r = search(model, hw, 8, trn, SearchConstraints(memory_headroom=0.5, **SMALL))
    assert r.best.usable_memory_bytes == pytest.approx(result.best.usable_memory_bytes * 0.5)
    assert all(p.estimate.peak_memory_bytes <= p.usable_memory_bytes for p in r.plans)


def test_memory_objective_ranks_by_peak(setup):
    model, hw, trn = setup
    r = search(model, hw, 8, trn, SearchConstraints(objective="memory", **SMALL), top=50)
    peaks = [p.estimate.peak_memory_bytes for p in r.plans]
    assert peaks == sorted(peaks)


def test_cost_objective_may_use_fewer_gpus(setup):
    model, hw, trn = setup
    r = search(model, hw, 16, trn, SearchConstraints(objective="cost", **SMALL), top=50)
    costs = [p.gpu_hours_per_mtok for p in r.plans]
    assert costs == sorted(costs)
    assert {p.gpus for p in r.plans} <= {16, 8, 4, 2}


def test_tp_kept_within_node_unless_allowed():
    model, hw = load_model("frontier-175b"), load_hardware("mi250x-frontier")
    node = hw.node.devices_per_node
    assert max(tp_degrees(model, hw, 1024, cross_node=False)) <= node
    assert max(tp_degrees(model, hw, 1024, cross_node=True)) > node


@pytest.mark.parametrize("layers,pp", [(128, 3), (128, 6), (96, 7), (24, 5), (25, 2)])
def test_uneven_split_is_megatron_expressible(layers, pp):
    split = stage_split(layers, pp)
    assert split not in (None, "invalid")
    assert sum(split) == layers and len(split) == pp
    assert len(set(split[1:-1])) <= 1  # middle stages equal: --decoder-first/last-pipeline-num-layers
    assert max(split[0], split[-1]) <= max(split)


def test_even_split_is_none():
    assert stage_split(128, 16) is None


def test_bad_constraints_raise_spec_error(setup):
    model, hw, trn = setup
    with pytest.raises(SpecError, match="max-tp"):
        search(model, hw, 8, trn, SearchConstraints(max_tp=3))
    with pytest.raises(SpecError, match="gpus"):
        search(model, hw, 0, trn)
    with pytest.raises(SpecError, match="pp"):
        search(model, hw, 8, trn, SearchConstraints(pp=3))


def test_infeasible_reports_shortfall_and_gpus_needed():
    model, hw = load_model("gpt3-13b"), load_hardware("a100-sxm-40gb")
    with pytest.raises(InfeasibleError) as exc:
        search(model, hw, 1, TrainingSpec(global_batch_size=8))
    err = exc.value
    assert err.exit_code == 1
    assert err.details["shortfall_bytes"] > 0
    needed = err.details["gpus_needed"]
    assert needed > 1
    # the suggested GPU count really admits a fitting plan
    assert search(model, hw, needed, TrainingSpec(global_batch_size=8)).best.estimate.fits


def test_reference_is_priced_and_compared(setup):
    model, hw, trn = setup
    ref = Layout(tp=1, pp=2, dp=4)
    r = search(model, hw, 8, trn, SearchConstraints(**SMALL), reference=ref)
    assert r.reference is not None and r.reference.layout == ref
    assert r.best.estimate.step_time_s <= r.reference.estimate.step_time_s or not r.reference.estimate.fits
    assert any("reference" in line for line in r.explanation)


def test_runner_up_explanation_names_numbers(result):
    line = result.explanation[0]
    assert line.startswith("runner-up")
    assert "slower" in line or "as fast" in line


def test_refine_without_simulator_is_a_spec_error(setup, result, monkeypatch):
    model, hw, _ = setup
    monkeypatch.setattr(refine_mod, "simulator_available", lambda: None)
    with pytest.raises(SpecError, match="not available"):
        refine_mod.refine(result, 3, model, hw)


def test_refine_reranks_with_a_simulator(setup, result, monkeypatch):
    model, hw, _ = setup

    def fake(scenario):  # stands in for simulate.simulate_estimate: reverse the analytic order
        est = scenario.estimate()
        return est.model_copy(update={"tokens_per_s": 1.0 / est.tokens_per_s, "engine": "simulate"})

    monkeypatch.setattr(refine_mod, "simulator_available", lambda: fake)
    r = refine_mod.refine(result, 3, model, hw)
    assert r.refined and r.plans[0].engine == "simulate"
    head = r.plans[:3]
    assert sorted(p.label for p in head) == sorted(p.label for p in result.plans[:3])
    sim_tps = [p.estimate.tokens_per_s for p in head]
    assert sim_tps == sorted(sim_tps, reverse=True)
    assert r.plans[3:] and r.plans[3].engine == "analytic"


def test_workers_give_the_serial_result():
    """``search(workers=N)`` scans and prices in N processes; the ranking is the serial one."""
    from hwprofiles import load_hardware, load_model
    from planner.search import search as run_search
    from planner.specs import TrainingSpec

    model, hw = load_model("llama3-8b"), load_hardware("h100-sxm-80gb")
    training = TrainingSpec(global_batch_size=64)
    serial = run_search(model, hw, 16, training, top=50)
    for n in (2, 3):
        par = run_search(model, hw, 16, training, top=50, workers=n)
        assert [p.model_dump(exclude={"estimate"}) for p in par.plans] == [
            p.model_dump(exclude={"estimate"}) for p in serial.plans]
        assert [p.estimate.step_time_s for p in par.plans] == [p.estimate.step_time_s for p in serial.plans]
        assert par.stats.model_dump(exclude={"elapsed_s"}) == serial.stats.model_dump(exclude={"elapsed_s"})
        assert par.total_feasible == serial.total_feasible
