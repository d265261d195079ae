"""Simulator speed (prints figures; no wall-clock assertions). Run: python tests/bench/bench_simulate.py"""

from __future__ import annotations

from hwprofiles import load_hardware, load_model
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec
from simulate import run

CASES = [
    ("frontier-175b", 1024, dict(tp=4, pp=16, dp=16, zero_stage=1), 640),
    ("frontier-175b", 1024, dict(tp=4, pp=16, dp=16, zero_stage=1), 1024),
    ("frontier-1t", 3072, dict(tp=4, pp=128, dp=6, zero_stage=1), 6144),
    ("frontier-1t", 3072, dict(tp=8, pp=64, dp=6, zero_stage=1), 6144),
]


def main() -> None:
    hw = load_hardware("mi250x-frontier")
    for model, gpus, layout, gb in CASES:
        sc = Scenario(model=load_model(model), hardware=hw, gpus=gpus, layout=Layout(**layout),
                      training=TrainingSpec(global_batch_size=gb, recompute="full", precision="fp16",
                                            recipe="deepspeed"))
        analytic = sc.estimate()
        for overlap, contention in ((False, False), (True, True)):
            r = run(sc, overlap=overlap, contention=contention)
            e = r.estimate
            print(f"{model} {gpus} GCDs {sc.layout.describe()} gb{gb} m={e.micro_batches} "
                  f"overlap={overlap} contention={contention}: sim {e.step_time_s:.3f} s vs analytic "
                  f"{analytic.step_time_s:.3f} s; dp exposed {e.time.dp_comm_exposed:.3f} vs "
                  f"{analytic.time.dp_comm_exposed:.3f} s; {r.events} events in {r.wall_s:.2f} s "
                  f"({r.events / r.wall_s:,.0f} events/s)")


if __name__ == "__main__":
    main()
