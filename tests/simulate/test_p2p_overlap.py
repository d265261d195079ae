"""Megatron-Core overlaps the interleaved schedule's pipeline sends with compute (overlap_p2p_comm,
recipe field p2p_overlap_interleaved): a send holds its stage only for what outlasts the smaller chunk
pass. The analytic model and the simulator (overlap and contention off) price it the same way."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware, load_model
from planner.pricing import Pricer
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec
from simulate import simulate_estimate


def _scenario(recipe: str, schedule: str, vpp: int, hw: str = "a100-sxm-40gb") -> Scenario:
    lay = Layout(tp=2, pp=4, dp=1, vpp=vpp, schedule=schedule, sequence_parallel=True)
    return Scenario(model=load_model("llama2-7b"), hardware=load_hardware(hw), gpus=lay.gpus, layout=lay,
                    training=TrainingSpec(global_batch_size=16, seq_length=4096, recipe=recipe))


@pytest.mark.parametrize("recipe", ["megatron-core", "megatron-lm"])
def test_simulator_matches_the_analytic_p2p_rule(recipe):
    sc = _scenario(recipe, "interleaved-1f1b", 4)
    analytic = sc.estimate()
    sim = simulate_estimate(sc, overlap=False, contention=False)
    assert sim.step_time_s == pytest.approx(analytic.step_time_s, rel=0.01)
    assert sim.time.pp_comm == pytest.approx(analytic.time.pp_comm, rel=0.01, abs=1e-9)


def test_only_megatron_core_interleaving_hides_sends():
    core_i = _scenario("megatron-core", "interleaved-1f1b", 4)
    core_1 = _scenario("megatron-core", "1f1b", 1)
    lm_i = _scenario("megatron-lm", "interleaved-1f1b", 4)
    send = Pricer(core_i.hardware, core_i.training, core_i.layout, core_i.gpus).p2p_time
    for sc, hidden in ((core_i, True), (core_1, False), (lm_i, False)):
        pricer = Pricer(sc.hardware, sc.training, sc.layout, sc.gpus)
        one = pricer.p2p_time(1e8)
        assert one == send(1e8) > 0
        blocking = pricer.p2p_blocking_time(one, fwd_compute=1e9, bwd_compute=2e9)  # long passes hide it
        assert blocking == (0.0 if hidden else one)
        # a send longer than the smaller chunk pass (fwd / vpp) leaves the difference exposed
        short = pricer.p2p_blocking_time(one, fwd_compute=one * sc.layout.vpp / 2, bwd_compute=1.0)
        assert short == pytest.approx(one / 2 if hidden else one)
    assert core_i.estimate().time.pp_comm < lm_i.estimate().time.pp_comm


@pytest.mark.parametrize(("recipe", "tp", "sp", "expected"), [
    ("megatron-lm", 4, False, (0.25, 1.0)),  # scatter/gather: 1/tp sent, the whole all-gathered
    ("deepspeed", 4, False, (0.25, 1.0)),  # partitioned pipe activations
    ("megatron-lm", 4, True, (0.25, 0.0)),  # sequence parallel: already sharded, nothing to gather
    ("megatron-core", 4, False, (1.0, 0.0)),  # every tp rank sends the whole tensor
    ("megatron-lm", 1, False, (1.0, 0.0)),
])
def test_pipeline_send_bytes_follow_the_recipe(recipe, tp, sp, expected):
    from planner.work.step import pipeline_send_bytes

    layout = Layout(tp=tp, pp=2, dp=1, sequence_parallel=sp)
    training = TrainingSpec(global_batch_size=8, recipe=recipe)
    send, gather = pipeline_send_bytes(1000.0, training, layout)
    assert (send / 1000.0, gather / 1000.0) == expected


def test_scatter_gather_sends_are_cheaper_across_nodes_and_simulated_alike():
    # tp 8 fills a node, so each stage boundary crosses the network: 1/tp per NIC instead of the whole tensor
    lay = Layout(tp=8, pp=2, dp=1, sequence_parallel=False)
    hw, model = load_hardware("a100-sxm-40gb"), load_model("llama2-7b")
    lm, core = (Scenario(model=model, hardware=hw, gpus=lay.gpus, layout=lay,
                         training=TrainingSpec(global_batch_size=16, seq_length=4096, recipe=r, tp_comm_overlap=False))
                for r in ("megatron-lm", "megatron-core"))
    assert lm.estimate().time.pp_comm < core.estimate().time.pp_comm
    sim = simulate_estimate(lm, overlap=False, contention=False)
    assert sim.step_time_s == pytest.approx(lm.estimate().step_time_s, rel=0.01)
