"""The memory scan's stage records (planner.work.step_bytes.step_bytes) are the bytes of build_step's
stages: every StageBytes field of every template equals the record built without op lists (each
built with every cache emptied first), and the search's memory check reports the peak the full
step's stage memories report. The cyclic collector is paused during a search and restored after."""

from __future__ import annotations

import dataclasses
import gc
import weakref

import pytest

from hwprofiles import load_hardware, load_model
from planner.cost.peaks import stage_memories_and_peak
from planner.search import check_memory, search
from planner.search.space import Candidate
from planner.specs import Layout, TrainingSpec, check_layout
from planner.work import stage_templates
from planner.work import step as step_mod
from planner.work.offload import OFFLOAD_LEVELS
from planner.work.stage import StageBytes
from planner.work.step_bytes import step_bytes

DSV3 = "tests/data/hf/deepseek-v3/config.json"
CASES = [  # (model, training, layout): dense, MoE with leading dense layers, ZeRO-3, offload, cp, interleaved
    ("llama3-8b", dict(global_batch_size=64, seq_length=4096), dict(tp=2, pp=4, dp=2, sequence_parallel=True)),
    ("llama3-8b", dict(global_batch_size=32, seq_length=8192, recompute="full", micro_batch_size=2),
     dict(tp=1, pp=1, dp=16, zero_stage=3)),
    ("llama3-8b", dict(global_batch_size=32, seq_length=16384, recompute="selective"),
     dict(tp=2, pp=2, dp=2, cp=2, schedule="interleaved-1f1b", vpp=2)),
    ("llama3-8b", dict(global_batch_size=64, seq_length=4096, offload=OFFLOAD_LEVELS[1].model_dump()),
     dict(tp=2, pp=1, dp=8, zero_stage=2)),
    ("qwen3-30b-a3b", dict(global_batch_size=64, seq_length=4096), dict(tp=2, pp=4, dp=2, ep=2, sequence_parallel=True)),
    (DSV3, dict(global_batch_size=1024, seq_length=4096, recompute="full"),
     dict(tp=2, pp=8, dp=64, ep=32, sequence_parallel=True, zero_stage=1)),
    (DSV3, dict(global_batch_size=512, seq_length=4096, recipe="megatron-core"),
     dict(tp=4, pp=16, dp=32, ep=8, etp=1, sequence_parallel=True)),  # uneven: 61 layers over 16 stages
]


def _clear_caches() -> None:
    for fn in (step_mod._layer_work, step_mod._layer_base, step_mod._pre_work, step_mod._post_work):
        fn.cache_clear()
    step_mod._RECENT.clear()
    step_mod._LAYER_LAYOUTS.clear()
    stage_templates.clear()


def _specs(model, training, layout):
    m, t, lay = load_model(model), TrainingSpec(**training), Layout(**layout)
    check_layout(lay, m, t, lay.gpus)
    return m, t, lay


@pytest.mark.parametrize("model,training,layout", CASES)
def test_stage_records_are_the_full_steps_bytes(model, training, layout):
    m, t, lay = _specs(model, training, layout)
    _clear_caches()
    full = step_mod.build_step(m, t, lay)
    _clear_caches()
    records = step_bytes(m, t, lay)
    assert [n for _, n in full.runs] == [n for _, n in records.runs]
    assert full.in_flight == records.in_flight and full.micro_batches == records.micro_batches
    names = [f.name for f in dataclasses.fields(StageBytes)]
    for (template, _), (rec, _) in zip(full.runs, records.runs):
        assert template is not rec
        assert {k: getattr(template, k) for k in names} == {k: getattr(rec, k) for k in names}
    assert [s.index for s in full.stages] == [s.index for s in records.stages]


@pytest.mark.parametrize("model,training,layout", CASES)
def test_memory_check_peak_is_the_full_steps_peak(model, training, layout):
    m, t, lay = _specs(model, training, layout)
    hw = load_hardware("h100-sxm-80gb")
    _clear_caches()
    mc = check_memory(m, hw, Candidate(lay, t, lay.gpus), usable=80 * 2**30)
    _clear_caches()
    _, peak, _ = stage_memories_and_peak(step_mod.build_step(m, t, lay), hw)
    assert mc.peak_bytes == peak


def test_search_pauses_the_cyclic_collector_and_restores_it():
    m, hw, t = load_model("llama3-8b"), load_hardware("h100-sxm-80gb"), TrainingSpec(global_batch_size=16)
    seen = []

    def progress(done, total):
        seen.append(gc.isenabled())

    class Node:
        pass

    was = gc.isenabled()
    try:
        gc.enable()
        cycle = Node()
        cycle.me = cycle
        alive = weakref.ref(cycle)
        search(m, hw, 8, t, progress=progress)
        assert seen and not any(seen) and gc.isenabled() and gc.get_freeze_count() == 0
        del cycle
        gc.collect()
        assert alive() is None  # a cycle older than the search is still collected (nothing stays frozen)
        gc.disable()
        search(m, hw, 8, t)
        assert not gc.isenabled()  # left as the caller set it
    finally:
        (gc.enable if was else gc.disable)()
