"""The coarse replay (steady-state cycle replayed on three short pipelines and extended, see
``simulate.coarse``) agrees with the fine replay of every micro-batch, overlap and contention on."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sim_scenarios import SMALL, TINY_VOCAB, scenario

from planner.errors import SpecError
from planner.specs import SCHEDULES, check_layout
from simulate import run
from simulate.coarse import peak_held_chunks, replay_counts
from simulate.schedules import stage_order


@st.composite
def layouts(draw):
    pp = draw(st.sampled_from([1, 2, 4, 8]))
    schedule = draw(st.sampled_from(SCHEDULES if pp > 1 else ["1f1b"]))
    vpp = draw(st.sampled_from([2, 4])) if schedule == "interleaved-1f1b" else 1
    zero = draw(st.sampled_from([0, 1, 2, 3] if pp == 1 else [0, 1, 2]))
    return dict(tp=draw(st.sampled_from([1, 2, 4, 8])), pp=pp, dp=draw(st.sampled_from([1, 2, 4])), vpp=vpp,
                schedule=schedule, zero_stage=zero)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts(), st.sampled_from([16, 40, 96]), st.sampled_from(["mi250x-frontier", "h100-sxm-80gb"]),
       st.booleans(), st.sampled_from([SMALL, TINY_VOCAB]))
def test_coarse_equals_fine_with_overlap_and_contention(layout, per_replica, hw, overlap_dp, model):
    sc = scenario(model=model, hw=hw, gb=per_replica * layout["dp"], overlap_dp=overlap_dp, **layout)
    try:
        check_layout(sc.layout, sc.model, sc.training, sc.gpus)
    except SpecError:
        assume(False)
    m = per_replica
    assume(sc.layout.schedule != "interleaved-1f1b" or m % sc.layout.pp == 0)
    fine = run(sc, overlap=True, contention=True, fine=True)
    coarse = run(sc, overlap=True, contention=True)
    assert coarse.estimate.step_time_s == pytest.approx(fine.estimate.step_time_s, rel=0.005)
    for part, value in fine.estimate.time.model_dump().items():
        assert getattr(coarse.estimate.time, part) == pytest.approx(value, rel=0.005, abs=1e-3 * fine.estimate.step_time_s)
    assert [s.peak_bytes for s in coarse.estimate.memory] == pytest.approx([s.peak_bytes for s in fine.estimate.memory])
    assert [u.resource for u in coarse.utilisation] == [u.resource for u in fine.utilisation]
    for cu, fu in zip(coarse.utilisation, fine.utilisation):
        assert cu.busy_s == pytest.approx(fu.busy_s, rel=0.005, abs=1e-6)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("hw", ["mi250x-frontier", "h100-sxm-80gb"])
def test_every_schedule_replays_coarsely_and_exactly(schedule, hw):
    vpp = 2 if schedule == "interleaved-1f1b" else 1
    sc = scenario(hw=hw, gb=192, tp=2, pp=4, dp=2, zero_stage=1, schedule=schedule, vpp=vpp)
    coarse, fine = run(sc), run(sc, fine=True)
    assert any("steady-state cycle" in line for line in coarse.folded)  # the shortcut was taken
    assert coarse.estimate.step_time_s == pytest.approx(fine.estimate.step_time_s, rel=1e-9)


def test_coarse_replays_few_micro_batches():
    sc = scenario(hw="mi250x-frontier", gb=256, tp=2, pp=4, dp=2, zero_stage=1)
    fine = run(sc, fine=True)
    coarse = run(sc)
    assert coarse.events < fine.events / 4
    assert any("steady-state cycle" in line for line in coarse.folded)
    assert not any("steady-state cycle" in line for line in fine.folded)


def test_fine_replay_when_jitter_or_trace():
    sc = scenario(hw="mi250x-frontier", gb=128, tp=2, pp=4, dp=2, zero_stage=1)
    assert run(sc, trace=True).trace_events
    assert not any("steady-state" in line for line in run(sc, jitter=0.05, seed=1).folded)


@pytest.mark.parametrize("schedule,p,m,v", [("1f1b", 8, 64, 1), ("gpipe", 4, 9, 1), ("zb-h1", 8, 40, 1),
                                            ("interleaved-1f1b", 4, 16, 2)])
def test_peak_held_chunks_from_the_order(schedule, p, m, v):
    expected = {"1f1b": lambda i: min(p - i, m), "gpipe": lambda i: m, "zb-h1": lambda i: min(p, m),
                "interleaved-1f1b": lambda i: min(2 * (p - i - 1) + (v - 1) * p + 1, m * v)}[schedule]
    for i in range(p):
        assert peak_held_chunks(schedule, i, p, m, v) == expected(i), i
        assert len(stage_order(schedule, i, p, m, v)) == m * v * (3 if schedule == "zb-h1" else 2)


def test_replay_counts_only_when_cheaper():
    assert replay_counts("1f1b", 128, 1024) == ((129, 130, 131), 1)
    assert replay_counts("1f1b", 1, 64) == ((2, 3, 4), 1)
    assert replay_counts("zb-h1", 8, 1024) == ((9, 10, 11), 1)
    assert replay_counts("interleaved-1f1b", 4, 1024) == ((4, 8, 12), 4)
    assert replay_counts("1f1b", 8, 40) is None


@pytest.mark.parametrize("schedule", ["1f1b", "zb-h1", "gpipe"])
@pytest.mark.parametrize("hw", ["mi250x-frontier", "h100-sxm-80gb"])
def test_uneven_stages_replay_coarsely(schedule, hw):
    """Megatron's uneven split (the first and last stages hold fewer layers): the slowest stage is
    not the first, and the coarse replay still equals the fine one."""
    from planner.search.space import stage_split

    split = stage_split(SMALL.num_layers, 3)
    assert isinstance(split, list) and len(set(split)) > 1
    sc = scenario(hw=hw, gb=96, tp=2, pp=3, dp=2, zero_stage=1, schedule=schedule, stage_layers=split)
    coarse, fine = run(sc), run(sc, fine=True)
    assert any("steady-state cycle" in line for line in coarse.folded)
    assert coarse.estimate.step_time_s == pytest.approx(fine.estimate.step_time_s, rel=0.005)
