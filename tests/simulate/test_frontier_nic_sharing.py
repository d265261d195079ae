"""Frontier effect (issue 5): 175B on 1024 MI250X GCDs, 4 NICs shared by 8 GCDs. The simulator finds two
ranks on every busy NIC and a data-parallel reduction that leaves more exposed time than the analytic
estimate, where it collides with pipeline transfers on the same NICs. The reduction is overlapped with the
backward explicitly (DeepSpeed's own pipeline engine reduces after the schedule, where nothing collides)."""

from hwprofiles import load_hardware, load_model
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec
from simulate import run


def test_shared_nics_slow_the_data_parallel_reduction():
    sc = Scenario(
        model=load_model("frontier-175b"), hardware=load_hardware("mi250x-frontier"), gpus=1024,
        training=TrainingSpec(seq_length=2048, global_batch_size=640, micro_batch_size=1, precision="fp16",
                              recipe="deepspeed", recompute="full", overlap_dp_comm=True),
        layout=Layout(tp=4, pp=16, dp=16, zero_stage=1),
    )
    result = run(sc)
    analytic = sc.estimate()
    assert result.estimate.time.dp_comm_exposed > analytic.time.dp_comm_exposed * 1.02
    nics = [u for u in result.utilisation if u.resource.startswith("node ") and u.busy_s > 0]
    users = sum(u.mean_users * u.busy_s for u in nics) / sum(u.busy_s for u in nics)
    assert 1.9 <= users <= 2.1  # two GCDs of one MI250X behind each Slingshot NIC
