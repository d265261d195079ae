"""Search speed at scale (prints figures; no wall-clock assertions).

    python tests/bench/bench_plan_scale.py [--workers N]

Each case is searched ``REPEATS`` times (min kept: the CI machine is shared), printed with its
ratio to the figure before issue 16 (where one was measured) and to the goal.
"""

from __future__ import annotations

import sys
import time

from hwprofiles import load_hardware, load_model
from planner.errors import SpecError
from planner.frameworks import resolve_framework
from planner.search import SearchConstraints, search
from planner.specs import TrainingSpec

REPEATS = 3
# (label, model, hardware, gpus, training, before s, goal s); MOE_CASES are searched as `paraplan plan` does
CASES = [
    ("frontier-1t on 3072 MI250X GCDs, gb 6144", "frontier-1t", "mi250x-frontier", 3072,
     dict(global_batch_size=6144), 1.8, 1.0),
    ("llama3.1-405b on 16384 H100, gb 2048 x 8192", "llama3.1-405b", "h100-sxm-80gb", 16384,
     dict(global_batch_size=2048, seq_length=8192), None, 2.0),
    ("llama3.1-405b on 131072 H100, gb 16384 x 8192", "llama3.1-405b", "h100-sxm-80gb", 131072,
     dict(global_batch_size=16384, seq_length=8192), None, 5.0),
]
# MoE (ep, etp in the space); before: CPU seconds of `paraplan plan` (2026-12-01, whole process)
MOE_CASES = [
    ("deepseek-v3 (HF config) on 2048 H100, gb 15360 x 4096", "tests/data/hf/deepseek-v3/config.json",
     "h100-sxm-80gb", 2048, dict(global_batch_size=15360, seq_length=4096), 5.0, 2.0),
    ("qwen3-30b-a3b on 64 H100, gb 256 x 16384", "qwen3-30b-a3b", "h100-sxm-80gb", 64,
     dict(global_batch_size=256, seq_length=16384), 11.0, 2.0),
]
CASES += [
    ("llama3.1-405b on 10^12 GPUs (refused: dp > batch)", "llama3.1-405b", "h100-sxm-80gb", 10**12,
     dict(global_batch_size=16384, seq_length=8192), None, 0.1),
]


def cli_constraints(training: TrainingSpec) -> SearchConstraints:
    """The constraints `paraplan plan` searches with when no option is given (the recipe's framework)."""
    return SearchConstraints(framework=resolve_framework(None, training.recipe, None), framework_model_rules=False)


def main(argv: list[str]) -> None:
    workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1
    for label, model, hw, gpus, training, before, goal in CASES + MOE_CASES:
        m, h, t = load_model(model), load_hardware(hw), TrainingSpec(**training)
        best, outcome = float("inf"), ""
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            try:
                cons = cli_constraints(t) if model in {c[1] for c in MOE_CASES} else None
                res = search(m, h, gpus, t, cons, workers=workers)
                s = res.stats
                outcome = (f"{s.structures} structures, {s.memory_checked} memory-checked, {s.priced} priced; "
                           f"best {res.best.label}")
            except SpecError as err:
                outcome = f"refused: {str(err)[:70]}..."
            best = min(best, time.perf_counter() - t0)
        ratio = f"{best / before:.2f}x of before ({before} s), " if before else ""
        print(f"{label}: min of {REPEATS} {best:.3f} s (workers {workers}); {ratio}{best / goal:.2f}x of the "
              f"{goal} s goal; {outcome}")


if __name__ == "__main__":
    main(sys.argv[1:])
