"""Profile a rank's training steps with ``torch.profiler`` and keep the trace (Kineto / Chrome JSON).

Each traced step is wrapped in a ``ProfilerStep#<k>`` range, the annotation ``torch.profiler.profile.step``
writes and HolisticTraceAnalysis reads as an iteration, so the validator's traces and a user's own
traces go through one reader (planner.trace). The barrier that lines the ranks up before a step stays
outside the range. Shapes are recorded (``record_shapes``) so GEMMs, attention and memory-bound ops carry
their sizes, and collectives their message sizes and groups.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch.profiler import ProfilerActivity, profile, record_function

from .commcount import C10D_KINDS

TRACE_NAME = "rank_{rank}.pt.trace.json.gz"
"""File name of one rank's trace inside a job's trace folder (gzipped Chrome JSON, HTA's naming)."""


def trace_file(folder: Path, rank: int) -> Path:
    """Where rank ``rank`` writes its trace in ``folder``."""
    return Path(folder) / TRACE_NAME.format(rank=rank)


def traced_steps(step: Callable[[int], object], steps: int, out: Path | None, cuda: bool) -> dict[str, int]:
    """Run ``step(k)`` for k in 0..steps-1 under the profiler, each inside ``ProfilerStep#k`` after a
    barrier; write the trace to ``out`` (when given) and return the collective calls of one step by kind
    (the calls of all steps divided by ``steps``)."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, record_shapes=True) as prof:
        for k in range(steps):
            dist.barrier()
            with record_function(f"ProfilerStep#{k}"):
                step(k)
                if cuda:
                    torch.cuda.synchronize()
    counts: Counter[str] = Counter()
    for event in prof.key_averages():
        kind = C10D_KINDS.get(event.key)
        if kind:
            counts[kind] += event.count
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp.json.gz")
        prof.export_chrome_trace(str(tmp))
        tmp.replace(out)
    return {k: v // steps for k, v in sorted(counts.items())}
