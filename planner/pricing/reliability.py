"""Wall time of a run with failures, restarts and checkpoints; the checkpoint interval that minimises it.

Symbols (seconds): ``T_s`` the failure-free training time (steps x step time), ``M`` the job's mean
time between failures (1 / (failure rate per GPU-hour x GPUs) hours), ``delta`` what one
checkpoint blocks training, ``tau`` the training time between two checkpoints, ``R`` the restart
cost (detection + rescheduling + checkpoint load + warm-up), ``w`` the durability lag of an
asynchronous checkpoint (its background write; 0 when synchronous).

- Young 1974 ("A first order approximation to the optimum checkpoint interval", CACM 17(9)):
  tau = sqrt(2 delta M).
- Daly 2006 ("A higher order estimate of the optimum checkpoint interval for restart dumps",
  FGCS 22(3), 303-312): tau = sqrt(2 delta M) [1 + (1/3) sqrt(delta / 2M) + (1/9) (delta / 2M)] - delta
  for delta < 2M, else tau = M; and the wall time of exponentially distributed failures, restarts
  included, T_w = M e^(R/M) (e^((tau + delta)/M) - 1) T_s / tau.
- Asynchronous checkpoints: a failure loses the work back to the last *durable* checkpoint, on
  average ``w`` more than a synchronous one, so R + w takes R's place in T_w; the next checkpoint
  cannot start before the previous write ends, so tau >= w.
- Planned interruptions (maintenance) at ``p`` per second of the job each cost a checkpoint and a
  restart without detection or lost work: T = T_w / (1 - p (R_planned + delta)).

Goodput is T_s / T (the Llama 3 report's "effective training time": time spent on useful
training over elapsed time, arXiv 2407.21783 Sec. 3.3.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SpecError


def young_interval(delta_s: float, mtbf_s: float) -> float:
    """Young 1974: sqrt(2 delta M), s."""
    return math.sqrt(2.0 * delta_s * mtbf_s)


def daly_interval(delta_s: float, mtbf_s: float) -> float:
    """Daly 2006's higher-order optimum, s (module docstring); M when delta >= 2M."""
    if delta_s >= 2.0 * mtbf_s:
        return mtbf_s
    x = delta_s / (2.0 * mtbf_s)
    return math.sqrt(2.0 * delta_s * mtbf_s) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - delta_s


def daly_wall_time(useful_s: float, tau_s: float, delta_s: float, restart_s: float, mtbf_s: float) -> float:
    """Daly 2006's expected wall time of ``useful_s`` seconds of work checkpointed every ``tau_s``, s."""
    m = mtbf_s
    exponent = (tau_s + delta_s + restart_s) / m
    if exponent > 700:  # beyond a float: restarts outpace progress, the run never ends
        return math.inf
    return m * math.exp(restart_s / m) * math.expm1((tau_s + delta_s) / m) * useful_s / tau_s


@dataclass(frozen=True)
class Reliability:
    """Inputs of a run's failure model, seconds (module docstring)."""

    mtbf_s: float  # unexpected interruptions
    delta_s: float  # blocked per checkpoint
    restart_s: float  # R: detection + rescheduling + load + warm-up
    durability_lag_s: float = 0.0  # w (async)
    planned_every_s: float = math.inf  # 1 / p
    planned_restart_s: float = 0.0  # R_planned (rescheduling + load + warm-up)


@dataclass(frozen=True)
class RunTime:
    """Where the wall time of a run goes, seconds."""

    interval_s: float  # tau used
    optimal_interval_s: float  # the one minimising the wall time (Daly; >= w for async)
    young_interval_s: float
    wall_s: float
    useful_s: float
    checkpoint_s: float  # failure-free checkpoint stalls (T_s / tau) * delta
    failures_s: float  # restarts, re-done work and the checkpoints of re-done work
    planned_s: float  # planned interruptions
    failures: float  # expected number of unexpected interruptions
    planned: float  # expected number of planned interruptions
    lost_work_per_failure_s: float  # tau / 2 + w: work redone after one failure (first order)

    @property
    def goodput(self) -> float:
        """Useful time over wall time."""
        return self.useful_s / self.wall_s


def optimal_interval(rel: Reliability) -> float:
    """Daly's optimum, raised to the async write time (tau >= w), s; infinite without failures."""
    if math.isinf(rel.mtbf_s):
        return math.inf
    return max(daly_interval(rel.delta_s, rel.mtbf_s), rel.durability_lag_s)


def run_time(useful_s: float, rel: Reliability, interval_s: float | None = None) -> RunTime:
    """Wall time of ``useful_s`` seconds of training under ``rel``, checkpointing every ``interval_s``
    (None = the optimum) seconds of training."""
    if rel.mtbf_s <= 0:
        raise SpecError(f"mtbf({rel.mtbf_s:g} s) must be > 0", field="failures.rate_per_gpu_hour")
    best = optimal_interval(rel)
    tau = best if interval_s is None else interval_s
    if tau <= 0:
        raise SpecError(f"{tau:g} s must be > 0", field="--checkpoint-interval")
    if tau < rel.durability_lag_s:
        raise SpecError(f"{tau:.0f} s is shorter than an asynchronous write ({rel.durability_lag_s:.0f} s): the "
                        "next checkpoint would start before the last one is durable", field="--checkpoint-interval")
    if math.isinf(rel.mtbf_s):  # no failures: only the checkpoint stalls (Daly's model as M -> infinity)
        wall_f = useful_s + (0.0 if math.isinf(tau) else useful_s / tau * rel.delta_s)
    else:
        wall_f = daly_wall_time(useful_s, tau, rel.delta_s, rel.restart_s + rel.durability_lag_s, rel.mtbf_s)
    planned_cost = rel.planned_restart_s + rel.delta_s
    share = planned_cost / rel.planned_every_s
    if share >= 1:
        raise SpecError(f"planned interruptions every {rel.planned_every_s:.0f} s cost {planned_cost:.0f} s each: "
                        "the job never runs", field="failures.planned_rate_per_gpu_hour")
    wall = wall_f / (1.0 - share)
    stalls = 0.0 if math.isinf(tau) else useful_s / tau * rel.delta_s
    return RunTime(interval_s=tau, optimal_interval_s=best, young_interval_s=young_interval(rel.delta_s, rel.mtbf_s),
                   wall_s=wall, useful_s=useful_s, checkpoint_s=stalls, failures_s=wall_f - useful_s - stalls,
                   planned_s=0.0 if math.isinf(wall) else wall - wall_f, failures=wall / rel.mtbf_s, planned=wall / rel.planned_every_s,
                   lost_work_per_failure_s=tau / 2.0 + rel.durability_lag_s)
