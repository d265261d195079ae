"""The bounded search (planner.search.bounded, planner.cost.bound) returns what pricing every memory
survivor returns: same ranked plans and figures, same explanation, same feasible count and rejection
counts, on random small dense and MoE cases; and its bounds never exceed the priced step time."""

from __future__ import annotations

import math
import random

import pytest

from hwprofiles import load_hardware, load_model
from planner.cost import estimate
from planner.cost.bound import price_stages_bound, step_time_lower_bound
from planner.errors import InfeasibleError, SpecError
from planner.pricing.shared_blocks import shared_block_times
from planner.search import SearchConstraints, search
from planner.search import bounded as bounded_mod
from planner.search.scan import gpu_counts, scan_memory
from planner.specs import TrainingSpec


def _cases(n: int, seed: int = 16):
    rng = random.Random(seed)
    out = []
    models = [("llama3-8b", 64), ("gpt3-1.3b", 64), ("qwen3-30b-a3b", 16), ("mixtral-8x7b", 8), ("llama2-13b", 64)]
    for i in range(n):
        model, most = models[i % len(models)]  # MoE spaces (ep, etp) are larger: fewer GPUs keep the test short
        gpus = rng.choice([g for g in (8, 16, 32, 64) if g <= most])
        seq = rng.choice([2048, 4096, 8192])
        gb = rng.choice([1, 2, 4]) * gpus
        objective = rng.choice(["throughput", "throughput", "cost"])
        top = rng.choice([3, 10, 30])
        hw = rng.choice(["h100-sxm-80gb", "a100-sxm-80gb"])
        out.append((model, hw, gpus, dict(global_batch_size=gb, seq_length=seq), objective, top))
    return out


def _comparable(result) -> dict:
    d = result.model_dump(mode="json")
    for k in ("elapsed_s", "priced", "bounded"):
        d["stats"].pop(k)
    return d


@pytest.mark.parametrize("model,hw,gpus,training,objective,top", _cases(10))
def test_bounded_equals_exhaustive(model, hw, gpus, training, objective, top, monkeypatch):
    m, h, t = load_model(model), load_hardware(hw), TrainingSpec(**training)
    c = SearchConstraints(objective=objective)
    try:
        fast = search(m, h, gpus, t, c, top=top)
    except (InfeasibleError, SpecError) as err:  # the exhaustive search must say the same
        with monkeypatch.context() as mp:
            mp.setattr(bounded_mod, "bound_value", lambda *a: -math.inf)
            with pytest.raises(type(err)):
                search(m, h, gpus, t, c, top=top)
        return
    with monkeypatch.context() as mp:
        mp.setattr(bounded_mod, "bound_value", lambda *a: -math.inf)  # no bound: every survivor priced
        full = search(m, h, gpus, t, c, top=top)
    assert _comparable(fast) == _comparable(full)
    assert full.stats.bounded == 0
    assert fast.stats.priced + fast.stats.bounded == full.stats.priced  # every plan priced or bounded


@pytest.mark.parametrize("model,gpus,training", [
    ("qwen3-30b-a3b", 16, dict(global_batch_size=64, seq_length=4096)),
    ("llama3-8b", 16, dict(global_batch_size=32, seq_length=16384)),
])
def test_bounds_never_exceed_the_step_time(model, gpus, training):
    """Both bounds <= the estimate's step time (the stage-priced one within 1e-8 of it), and the memory
    check's peak is the estimate's peak, for every memory survivor."""
    m, h, t = load_model(model), load_hardware("h100-sxm-80gb"), TrainingSpec(**training)
    c = SearchConstraints()
    with shared_block_times():
        scan = scan_memory(m, h, gpu_counts(gpus, h, c.objective), t, c)
        assert len(scan.survivors) > 20
        for cand in scan.survivors:
            est = estimate(m, h, cand.training, cand.layout, cand.gpus)
            step = scan.steps.get(cand.key)
            lb, peak = scan.bounds[cand.key]
            assert lb <= est.step_time_s
            if step is not None:
                assert step_time_lower_bound(step, h) == lb
            staged = price_stages_bound(m, h, cand.training, cand.layout, cand.gpus, step)
            assert est.step_time_s * (1 - 1e-8) <= staged.bound_s <= est.step_time_s
            assert staged.estimate(h) == est
            assert peak == est.peak_memory_bytes
