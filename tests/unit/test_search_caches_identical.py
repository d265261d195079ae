"""The search's caches (the StepWork built for a memory survivor, the stage records of the memory scan,
block times shared between its Pricers, the per-layer / embedding / head op-set caches, the stage
templates, placements per layout) change no number: every plan a search returns equals a fresh
``estimate`` of its layout with every cache emptied first."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware, load_model
from planner.cost import estimate
from planner.pricing import shared_blocks
from planner.search import search
from planner.specs import TrainingSpec
from planner.work import stage_templates
from planner.work import step as step_mod


def _clear_caches() -> None:
    for fn in (step_mod._layer_work, step_mod._layer_base, step_mod._pre_work, step_mod._post_work):
        fn.cache_clear()
    step_mod._LAYER_LAYOUTS.clear()
    stage_templates.clear()


@pytest.mark.parametrize("model,hw,gpus,training", [
    ("qwen3-30b-a3b", "h100-sxm-80gb", 16, dict(global_batch_size=64, seq_length=4096)),
    ("llama3-8b", "h100-sxm-80gb", 16, dict(global_batch_size=32, seq_length=8192)),
])
def test_cached_search_equals_uncached_estimates(model, hw, gpus, training):
    m, h, t = load_model(model), load_hardware(hw), TrainingSpec(**training)
    _clear_caches()
    result = search(m, h, gpus, t, top=50)
    assert shared_blocks.current() is None  # the shared store lives only inside the search
    assert len(result.plans) > 5
    for plan in result.plans:
        _clear_caches()
        fresh = estimate(m, h, plan.training, plan.layout, plan.gpus)
        assert fresh == plan.estimate, plan.label


def test_shared_block_times_equal_unshared():
    m, h = load_model("qwen3-30b-a3b"), load_hardware("h100-sxm-80gb")
    t = TrainingSpec(global_batch_size=64, seq_length=4096)
    plans = search(m, h, 16, t, top=20).plans
    alone = [estimate(m, h, p.training, p.layout, p.gpus) for p in plans]
    with shared_blocks.shared_block_times() as store:
        shared = [estimate(m, h, p.training, p.layout, p.gpus) for p in plans]
        shared_again = [estimate(m, h, p.training, p.layout, p.gpus) for p in plans]
        assert store["blocks"]  # the store was used
    assert alone == shared == shared_again
