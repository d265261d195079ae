"""Speed of the planner itself: the full default ``paraplan plan`` search for frontier-1t on 3072
MI250X GCDs (global batch 6144), and one estimate of the best layout, on one core."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from hwprofiles import load_hardware, load_model

from ..cost import estimate
from ..search import search
from ..specs import TrainingSpec

CASE = {"model": "frontier-1t", "hardware": "mi250x-frontier", "gpus": 3072, "global_batch": 6144}
TARGET_S = 2.0


class SpeedReport(BaseModel):
    """Wall times of the default search and of one estimate, seconds."""

    model: str = Field(description="model searched")
    hardware: str = Field(description="hardware profile")
    gpus: int = Field(description="GPUs")
    global_batch: int = Field(description="sequences per step")
    search_s: float = Field(description="best wall time of the full default search over the repeats, s")
    structures: int = Field(description="layout structures enumerated")
    memory_checked: int = Field(description="candidates memory-checked")
    priced: int = Field(description="candidates priced by estimate")
    layouts_per_s: float = Field(description="memory-checked candidates per second")
    estimate_ms: float = Field(description="one estimate of the best layout, ms (median of repeats)")
    target_s: float = Field(description="target search time, s (issue 4)")
    best: str = Field(description="best layout found")


def measure(repeats: int = 3, estimate_repeats: int = 20) -> SpeedReport:
    """Run the default search ``repeats`` times (best time) and time one estimate."""


    model, hw = load_model(CASE["model"]), load_hardware(CASE["hardware"])
    training = TrainingSpec(global_batch_size=CASE["global_batch"])
    best_t, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = search(model, hw, CASE["gpus"], training)
        best_t = min(best_t, time.perf_counter() - t0)
    plan = result.best
    times = []
    for _ in range(estimate_repeats):
        t0 = time.perf_counter()
        estimate(model, hw, plan.training, plan.layout, plan.gpus)
        times.append(time.perf_counter() - t0)
    times.sort()
    s = result.stats
    return SpeedReport(
        model=CASE["model"], hardware=CASE["hardware"], gpus=CASE["gpus"], global_batch=CASE["global_batch"],
        search_s=best_t, structures=s.structures, memory_checked=s.memory_checked, priced=s.priced,
        layouts_per_s=s.memory_checked / best_t, estimate_ms=times[len(times) // 2] * 1e3, target_s=TARGET_S,
        best=plan.label)
