"""Stragglers in the simulator: off, the replay and the analytic model agree; on, the slowest rank sets
the step, and the trace names it."""

from __future__ import annotations

import pytest
from sim_scenarios import SMALL, TINY_VOCAB, scenario

from planner.errors import SpecError
from planner.specs.straggler import SlowPart, StragglerSpec, parse_slow_part
from simulate import run, simulate_estimate
from simulate.stragglers import coordinates
from simulate.trace import trace_document

LAYOUTS = [dict(tp=2, pp=1, dp=4), dict(tp=1, pp=4, dp=2), dict(tp=2, pp=4, dp=2, vpp=2, schedule="interleaved-1f1b"),
           dict(tp=1, pp=2, dp=4, schedule="zb-h1"), dict(tp=2, pp=1, dp=4, zero_stage=3), dict(tp=2, pp=2, dp=2, cp=2)]


def _with(sc, **spec):
    return sc.model_copy(update={"stragglers": StragglerSpec(**spec)})


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nominal_straggler_path_equals_the_plain_replay_and_the_analytic(layout):
    """A 'straggler' at full speed goes through the straggler replay and changes nothing: the
    simulated step equals the plain replay and, with overlap and contention off, the analytic one."""
    interleaved = layout.get("schedule") == "interleaved-1f1b"  # as tests/simulate/test_invariant.py: the
    # drain hides more of an overlapped reduction than the analytic rule credits, so overlap it off there
    sc = scenario(model=TINY_VOCAB if interleaved else SMALL, gb=64, overlap_dp=not interleaved, **layout)
    nominal = _with(sc, slow=[SlowPart(rank=1, compute=1.0)])
    assert nominal.stragglers.active
    plain = simulate_estimate(sc, overlap=False, contention=False)
    slow_path = run(nominal, overlap=False, contention=False)
    assert slow_path.stragglers  # the straggler path ran
    assert slow_path.estimate.step_time_s == pytest.approx(plain.step_time_s, rel=1e-12)
    assert slow_path.estimate.step_time_s == pytest.approx(sc.estimate().step_time_s, rel=0.01)


def test_a_slow_gpu_without_a_pipeline_stretches_its_compute():
    """pp = 1, overlap off: every replica waits for the slow one at the gradient reduction, so the step
    grows by exactly (compute + optimizer) x (1 / 0.8 - 1)."""
    sc = scenario(gb=64, tp=2, pp=1, dp=4)
    base = simulate_estimate(sc, overlap=False, contention=False)
    slow = run(_with(sc, slow=[SlowPart(rank=5, compute=0.8)]), overlap=False, contention=False).estimate
    grow = (base.time.compute + base.time.optimizer) * (1 / 0.8 - 1)
    assert slow.step_time_s == pytest.approx(base.step_time_s + grow, rel=1e-9)
    assert slow.time.tp_comm == pytest.approx(base.time.tp_comm)


def test_the_slow_rank_is_placed_by_the_rank_order():
    sc = scenario(gb=64, tp=2, pp=4, dp=2)
    assert coordinates(sc.layout, 13) == {"tp": 1, "cp": 0, "pp": 2, "dp": 1}  # 13 = 1 + 2*2 + 8*1
    res = run(_with(sc, slow=[SlowPart(rank=13, compute=0.5)]), trace=True)
    assert "stage 2 of replica 1" in res.stragglers[0]
    assert "replica 1 sets the step" in res.stragglers[-1]
    doc = trace_document(res.trace_events, sc.layout.pp, "t", res.stage_labels)
    names = {e["pid"]: e["args"]["name"] for e in doc["traceEvents"] if e.get("name") == "process_name"}
    assert names[2] == "stage 2 — slow: rank 13: compute 0.50" and names[1] == "stage 1"
    slow_ops = [e["dur"] for e in res.trace_events if e.get("ph") == "X" and e["pid"] == 2 and e["tid"] == 0
                and e["name"].startswith("forward")]
    fast_ops = [e["dur"] for e in res.trace_events if e.get("ph") == "X" and e["pid"] == 1 and e["tid"] == 0
                and e["name"].startswith("forward")]
    assert min(slow_ops) > 1.5 * max(fast_ops)  # the slow rank's stage: twice the compute


def test_slower_parts_never_speed_the_step_up():
    sc = scenario(gb=64, tp=2, pp=2, dp=4)  # two nodes: the gradient reduction crosses the NICs
    base = simulate_estimate(sc)
    times = [run(_with(sc, slow=[SlowPart(**kw)])).estimate.step_time_s
             for kw in ({"rank": 0, "compute": 0.9}, {"node": 0, "nic": 0.5}, {"rank": 3, "link": 0.5})]
    assert all(t >= base.step_time_s * (1 - 1e-12) for t in times)
    assert times[1] > base.step_time_s  # a slow NIC slows the gradient reduction of every replica


def test_rank_variation_is_seeded_and_only_slows():
    sc = scenario(gb=64, tp=2, pp=2, dp=4)
    a = run(_with(sc, variation=0.05, seed=3)).estimate.step_time_s
    b = run(_with(sc, variation=0.05, seed=3)).estimate.step_time_s
    assert a == b
    # the slowest of 16 mean-one draws is below 1, and the step follows the slowest replica
    assert a > simulate_estimate(sc).step_time_s


def test_outside_ranks_and_bad_text_are_refused():
    sc = scenario(gb=64, tp=2, pp=2, dp=2)
    with pytest.raises(SpecError, match="outside the job's 8 ranks"):
        run(_with(sc, slow=[SlowPart(rank=8, compute=0.5)]))
    for text, match in (("rank=1", None), ("rank=1,compute=2", "less than or equal"), ("gpu=1,compute=0.5", "key"),
                        ("rank=a,compute=0.5", "integer"), ("compute=0.5", "exactly one")):
        if match is None:
            assert parse_slow_part(text).rank == 1
        else:
            with pytest.raises(SpecError, match=match):
                parse_slow_part(text)


def test_analytic_engine_refuses_stragglers():
    sc = _with(scenario(gb=64, tp=2, pp=1, dp=2), slow=[SlowPart(rank=0, compute=0.5)])
    with pytest.raises(SpecError, match="engine simulate"):
        sc.estimate()
