"""Simulator == analytic (overlap and contention off) with offload, TP ring-exchange and an NVL72 domain."""

import pytest

from hwprofiles import load_hardware, load_model
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec
from simulate import simulate_estimate

H100 = load_hardware("h100-sxm-80gb")
SLOW_HOST = H100.model_copy(update={"device": H100.device.model_copy(update={"host_link_gbps": 2.0})})


@pytest.mark.parametrize("hw,training,layout,gpus", [
    (SLOW_HOST, TrainingSpec(global_batch_size=16, seq_length=2048, recipe="deepspeed",
                             offload={"optimizer": True, "gradients": True}), Layout(tp=4, pp=2, dp=1,
                                                                                     sequence_parallel=True), 8),
    (H100, TrainingSpec(global_batch_size=16, seq_length=2048, offload={"optimizer": True}),
     Layout(tp=4, pp=2, dp=1, sequence_parallel=True), 8),
    (H100, TrainingSpec(global_batch_size=32, seq_length=2048, tp_comm_overlap=True, tp_overlap_style="ring-exchange"),
     Layout(tp=8, pp=2, dp=1, sequence_parallel=True), 16),
    (load_hardware("gb200-nvl72"), TrainingSpec(global_batch_size=16, seq_length=2048),
     Layout(tp=8, pp=2, dp=1, sequence_parallel=True), 16),
])
def test_simulator_matches_analytic(hw, training, layout, gpus):
    sc = Scenario(model=load_model("llama3-8b"), hardware=hw, gpus=gpus, training=training, layout=layout)
    a = sc.estimate()
    s = simulate_estimate(sc, overlap=False, contention=False)
    assert s.step_time_s == pytest.approx(a.step_time_s, rel=0.01)
