"""Published interruption rates of large training fleets, per GPU-hour, and the restart defaults.

Each rate is computed here from the counts its source publishes (no fitted number):

- ``llama3``: Llama 3 405B pre-training on 16,384 H100 (arXiv 2407.21783, Sec. 3.3.1 "up to 16K
  H100 GPUs", Sec. 3.3.4): "During a 54-day snapshot period of pre-training, we experienced a total
  of 466 job interruptions. Of these, 47 were planned ... The remaining 419 were unexpected".
  Unexpected 419 / (16,384 x 54 x 24) = 1.97e-5 per GPU-hour (job MTBF 3.1 h); planned 47 / the same.
- ``meta-rsc1`` / ``meta-rsc2``: Meta's research clusters, 6.50 and 2.34 failures per 1000
  node-days of 8 A100 (Kokolis et al. 2024, "Revisiting Reliability in Large-Scale Machine Learning
  Research Clusters", arXiv 2410.21680; quoted, not re-opened here: its projected MTTF of 1.8 h at
  16,384 GPUs follows from the RSC-1 rate), / (8 x 24) per GPU-hour; no planned rate is published.

Restart defaults (``FailureSpec`` fields left unset):

- detection: a crashed rank is seen by torchrun's agent within its 0.1 s monitor interval
  (torch 2.13 torch/distributed/run.py ``--monitor-interval`` default 0.1); a hang by the NCCL watchdog after the
  process group timeout, 10 minutes by default for NCCL (torch 2.13 torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp,
  ``kProcessGroupNCCLDefaultTimeout``). Llama 3's Table 5 counts 7 "NCCL Watchdog Timeouts" of 419, so
  the default is the mean 0.1 + 7/419 x 600 s.
- rescheduling and start-up before the checkpoint load: 600 s, inferred: Meta publishes no restart
  time; 600 s is the setup time Megatron's fault tolerance allows a (re)started job before it is
  declared hung (``--ft-rank_section_timeouts=setup:600``, NVIDIA Megatron-Bridge resiliency guide).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError


@dataclass(frozen=True)
class FleetRate:
    """Interruptions per GPU-hour of one published fleet."""

    name: str
    unexpected_per_gpu_hour: float
    planned_per_gpu_hour: float | None
    source: str


LLAMA3_GPU_HOURS = 16_384 * 54 * 24  # the 54-day snapshot on 16,384 GPUs
FLEETS: dict[str, FleetRate] = {
    "llama3": FleetRate("llama3", 419 / LLAMA3_GPU_HOURS, 47 / LLAMA3_GPU_HOURS,
                        "Llama 3 405B, 419 unexpected + 47 planned interruptions in 54 days on 16,384 H100 "
                        "(arXiv 2407.21783, Sec. 3.3.4)"),
    "meta-rsc1": FleetRate("meta-rsc1", 6.50e-3 / (8 * 24), None,
                           "Meta RSC-1, 6.50 failures per 1000 node-days of 8 A100 (arXiv 2410.21680, quoted)"),
    "meta-rsc2": FleetRate("meta-rsc2", 2.34e-3 / (8 * 24), None,
                           "Meta RSC-2, 2.34 failures per 1000 node-days of 8 A100 (arXiv 2410.21680, quoted)"),
}

#: torchrun's agent monitor interval (crash detection), s
TORCHRUN_MONITOR_S = 0.1
#: NCCL process-group timeout, the watchdog's hang detection, s
NCCL_WATCHDOG_S = 600.0
#: Llama 3 Table 5: interruptions that were NCCL watchdog timeouts, of the unexpected ones
WATCHDOG_SHARE = 7 / 419
DEFAULT_DETECT_S = TORCHRUN_MONITOR_S + WATCHDOG_SHARE * NCCL_WATCHDOG_S
DEFAULT_RESCHEDULE_S = 600.0


def fleet_rate(value: float | str, field: str, planned: bool = False) -> tuple[float, str]:
    """(interruptions per GPU-hour, where it came from) for a number or a fleet name."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise SpecError(f"{value:g} must be >= 0", field=field)
        return float(value), "given"
    key = str(value).strip().lower()
    try:
        return float(key), "given"
    except ValueError:
        pass
    fleet = FLEETS.get(key)
    if fleet is None:
        raise SpecError(f"'{value}' is neither a rate per GPU-hour nor one of: {', '.join(FLEETS)}", field=field)
    rate = fleet.planned_per_gpu_hour if planned else fleet.unexpected_per_gpu_hour
    if rate is None:
        return 0.0, f"{fleet.source}: no planned rate published, 0 used"
    return rate, fleet.source
