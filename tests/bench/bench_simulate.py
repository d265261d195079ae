"""Simulator speed (prints figures; no wall-clock assertions). Run: python tests/bench/bench_simulate.py

Each case is replayed ``REPEATS`` times and the minimum wall time is kept (the CI machine is shared);
the ratios are to the figure before the coarse replay (issue 16: 9-11 s for the frontier case) and
to the goal. ``--fine`` also times the fine replay of every micro-batch and checks the two agree.
"""

from __future__ import annotations

import sys
import time

from hwprofiles import load_hardware, load_model
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec
from simulate import run

REPEATS = 3
# (label, model, hardware, gpus, layout, training, before s (issue 16), goal s)
FRONTIER = dict(global_batch_size=6144, recompute="full", precision="fp16", recipe="deepspeed")
CASES = [
    ("frontier-1t tp4 pp128, 1024 micro-batches", "frontier-1t", "mi250x-frontier", 3072,
     dict(tp=4, pp=128, dp=6, zero_stage=1), FRONTIER, 9.0, 1.0),
    ("frontier-1t tp8 pp64, 1024 micro-batches", "frontier-1t", "mi250x-frontier", 3072,
     dict(tp=8, pp=64, dp=6, zero_stage=1), FRONTIER, None, 1.0),
    # 126 layers: no vpp makes pp16 * vpp divide them, so interleaving refuses pp16; 1F1B with
    # Megatron's uneven split (8 on the first and last stage) is the nearest legal layout
    ("llama3.1-405b 16384 H100 tp8 pp16 1f1b, gb 2048 (16M tokens)", "llama3.1-405b", "h100-sxm-80gb", 16384,
     dict(tp=8, pp=16, dp=128, zero_stage=1, sequence_parallel=True),
     dict(global_batch_size=2048, seq_length=8192), None, 2.0),
    ("llama3.1-405b 16384 H100 tp8 pp16 1f1b, gb 16384", "llama3.1-405b", "h100-sxm-80gb", 16384,
     dict(tp=8, pp=16, dp=128, zero_stage=1, sequence_parallel=True),
     dict(global_batch_size=16384, seq_length=8192), None, 2.0),
]


def scenario_of(model, hw, gpus, layout, training) -> Scenario:
    """The scenario; the stage split is Megatron's uneven one when pp does not divide the layers."""
    from planner.search.space import stage_split

    spec = load_model(model)
    split = stage_split(spec.num_layers, layout["pp"])
    lay = Layout(**layout, stage_layers=split if isinstance(split, list) else None)
    return Scenario(model=spec, hardware=load_hardware(hw), gpus=gpus, layout=lay,
                    training=TrainingSpec(**training))


def main(argv: list[str]) -> None:
    for label, model, hw, gpus, layout, training, before, goal in CASES:
        sc = scenario_of(model, hw, gpus, layout, training)
        best, res = float("inf"), None
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            res = run(sc, overlap=True, contention=True)
            best = min(best, time.perf_counter() - t0)
        lay = sc.layout
        ops = lay.pp * res.estimate.micro_batches * (lay.vpp if lay.schedule == "interleaved-1f1b" else 1) * (
            3 if lay.schedule == "zb-h1" else 2)
        ratio = f"{best / before:.3f}x of before ({before:.0f} s), " if before else ""
        print(f"{label}: step {res.estimate.step_time_s:.3f} s; {res.events:,} ops replayed for {ops:,} in the "
              f"step; min of {REPEATS}: {best:.3f} s ({res.events / best:,.0f} replayed events/s, "
              f"{ops / best:,.0f} step ops/s); {ratio}{best / goal:.2f}x of the {goal:.0f} s goal")
        if "--fine" in argv:
            t0 = time.perf_counter()
            fine = run(sc, overlap=True, contention=True, fine=True)
            dt = time.perf_counter() - t0
            print(f"    fine replay: {fine.events:,} events in {dt:.2f} s ({fine.events / dt:,.0f} events/s); "
                  f"coarse / fine step time - 1 = {res.estimate.step_time_s / fine.estimate.step_time_s - 1:+.2e}")


if __name__ == "__main__":
    main(sys.argv[1:])
