"""Benchmark script (not a test): time the full default ``paraplan plan`` search for frontier-1t on
3072 MI250X GCDs and print the ratio to the 2 s target; ``--profile`` adds the cProfile top entries.

Run: ``python tests/bench/bench_plan.py [--profile]``.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys

from planner.bench.speed import CASE, measure


def main(argv: list[str]) -> int:
    rep = measure(repeats=3)
    print(f"{CASE['model']} on {CASE['gpus']} x {CASE['hardware']}, global batch {CASE['global_batch']}")
    print(f"search {rep.search_s:.3f} s  ({rep.search_s / rep.target_s:.2f} x the {rep.target_s:.0f} s target)")
    print(f"structures {rep.structures}  memory-checked {rep.memory_checked}  priced {rep.priced}  "
          f"-> {rep.layouts_per_s:,.0f} layouts/s")
    print(f"one estimate {rep.estimate_ms:.2f} ms; best {rep.best}")
    if "--profile" in argv:
        prof = cProfile.Profile()
        prof.enable()
        measure(repeats=1, estimate_repeats=1)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(15)
        print(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
