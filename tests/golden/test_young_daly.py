"""Young 1974 and Daly 2006 on a case worked by hand, and the Llama 3 failure rate from its counts.

Case: a checkpoint blocks delta = 60 s, the job fails every M = 4 h = 14,400 s, a restart costs
R = 600 s, 100 h of training.

- Young: sqrt(2 delta M) = sqrt(2 * 60 * 14,400) = sqrt(1,728,000) = 1,314.534 s.
- Daly: x = delta / 2M = 60 / 28,800 = 1/480 = 0.0020833, sqrt(x) = 0.0456435;
  tau = 1,314.534 * (1 + 0.0456435 / 3 + 0.0020833 / 9) - 60 = 1,314.534 * 1.0154460 - 60 = 1,274.838 s.
- Daly's wall time: M e^(R/M) (e^((tau + delta)/M) - 1) T_s / tau
  = 14,400 * e^0.0416667 * (e^(1,334.838 / 14,400) - 1) * 360,000 / 1,274.838
  = 14,400 * 1.0425469 * 0.0971299 * 282.3918 = 411,771 s (goodput 360,000 / 411,771 = 0.8743).
"""

from __future__ import annotations

import math

import pytest

from planner.pricing.reliability import Reliability, daly_interval, daly_wall_time, run_time, young_interval
from planner.run.fleets import FLEETS


def test_young_interval_by_hand():
    assert young_interval(60.0, 14_400.0) == pytest.approx(1314.534, abs=1e-3)


def test_daly_interval_by_hand():
    assert daly_interval(60.0, 14_400.0) == pytest.approx(1274.838, abs=1e-3)


def test_daly_interval_is_the_mtbf_when_a_checkpoint_outlasts_two_mtbfs():
    assert daly_interval(100.0, 40.0) == 40.0  # Daly 2006: tau = M for delta >= 2M


def test_daly_wall_time_by_hand():
    wall = daly_wall_time(360_000.0, 1274.838, 60.0, 600.0, 14_400.0)
    assert wall == pytest.approx(411_771, rel=1e-5)
    rt = run_time(360_000.0, Reliability(mtbf_s=14_400.0, delta_s=60.0, restart_s=600.0))
    assert rt.interval_s == pytest.approx(1274.838, abs=1e-3)
    assert rt.goodput == pytest.approx(0.87427, abs=1e-5)
    assert rt.checkpoint_s == pytest.approx(360_000 / 1274.838 * 60, rel=1e-6)


def test_daly_interval_minimises_the_wall_time():
    tau = daly_interval(60.0, 14_400.0)
    at = [daly_wall_time(360_000.0, tau * f, 60.0, 600.0, 14_400.0) for f in (0.8, 1.0, 1.25)]
    assert at[1] < at[0] and at[1] < at[2]


def test_without_failures_only_the_checkpoints_cost():
    rt = run_time(1000.0, Reliability(mtbf_s=math.inf, delta_s=2.0, restart_s=600.0), interval_s=100.0)
    assert rt.wall_s == pytest.approx(1020.0)
    assert run_time(1000.0, Reliability(mtbf_s=math.inf, delta_s=2.0, restart_s=600.0)).wall_s == 1000.0


def test_async_write_adds_to_the_lost_work_and_bounds_the_interval():
    rel = Reliability(mtbf_s=14_400.0, delta_s=0.1, restart_s=600.0, durability_lag_s=120.0)
    rt = run_time(360_000.0, rel)
    assert rt.interval_s == pytest.approx(120.0)  # Daly's optimum (~53.7 s) raised to the write time
    assert rt.lost_work_per_failure_s == pytest.approx(60.0 + 120.0)


def test_llama3_rate_from_its_counts():
    """arXiv 2407.21783 Sec. 3.3.4: 419 unexpected interruptions in 54 days on 16,384 GPUs: one every
    54 * 24 / 419 = 3.093 h."""
    fleet = FLEETS["llama3"]
    assert fleet.unexpected_per_gpu_hour == pytest.approx(1.97328e-5, rel=1e-5)
    assert 1 / (fleet.unexpected_per_gpu_hour * 16_384) == pytest.approx(3.0931, abs=1e-4)
    assert fleet.planned_per_gpu_hour * 16_384 * 54 * 24 == pytest.approx(47)
