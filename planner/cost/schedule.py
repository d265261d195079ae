"""Closed-form pipeline schedule time from per-stage micro-batch times (seconds).

1F1B and GPipe: T = (m - 1) * max_i t_i + sum_i t_i; for equal stages this is (m + p - 1) * t,
bubble (p - 1) / m of the ideal (Narayanan et al. 2021, Sec. 2.2). Interleaved 1F1B with v
chunks divides the fill/drain by v (same paper, Sec. 2.2.2). ZB-H1 (Qi et al. 2023, arXiv
2401.10241, Sec. 2.1, Fig. 3 top) shrinks the 1F1B bubble from (p-1)(F+B+W) to (p-1)(F+B-W),
B the input gradient, W the weight gradient: the backward chain waits for B only, and the slowest
stage's p - 1 deferred W passes run during the drain. For unequal stages (s the slowest):
fill + drain = sum_{i != s} (F_i + B_i) - (p - 1) W_s, which is the paper's figure for equal stages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StagePass:
    """One stage's seconds for one micro-batch: forward (incl. its sends), input-grad backward
    (incl. recompute and sends) and weight-grad backward."""

    forward: float
    backward_input: float
    backward_weight: float

    @property
    def total(self) -> float:
        """Forward + backward, s."""
        return self.forward + self.backward_input + self.backward_weight


@dataclass(frozen=True, slots=True)
class PipelineTime:
    """Pipeline part of a step: busy time of the slowest stage and the bubble, seconds."""

    steady: float  # m * slowest stage time
    bubble: float  # fill + drain idle time on the critical path

    @property
    def total(self) -> float:
        """steady + bubble, s."""
        return self.steady + self.bubble


def pipeline_time(runs: list[tuple[StagePass, int]], micro_batches: int, schedule: str, vpp: int = 1) -> PipelineTime:
    """Time of ``micro_batches`` through the pipeline under ``schedule``; ``runs``: (stage pass,
    consecutive stages with that pass), in stage order (the sums still run stage by stage)."""
    totals: list[float] = []
    for s, count in runs:
        totals += [s.total] * count
    slowest = max(runs, key=lambda r: r[0].total)[0]  # the first of the slowest stages
    steady = micro_batches * slowest.total
    fill_drain = sum(totals) - slowest.total
    if schedule == "interleaved-1f1b":
        fill_drain /= vpp
    elif schedule == "zb-h1":
        chain: list[float] = []
        for s, count in runs:
            chain += [s.forward + s.backward_input] * count
        fill_drain = sum(chain) - slowest.forward - slowest.backward_input
        fill_drain -= (len(totals) - 1) * slowest.backward_weight
    return PipelineTime(steady, max(fill_drain, 0.0))


def bubble_fraction_closed_form(pp: int, micro_batches: int, schedule: str, vpp: int = 1) -> float:
    """Bubble / ideal time for equal stages: (p-1)/m, or (p-1)/(m*v) interleaved."""
    frac = (pp - 1) / micro_batches
    return frac / vpp if schedule == "interleaved-1f1b" else frac
