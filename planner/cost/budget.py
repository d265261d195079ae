"""The whole run: days, GPU-hours, energy and cost to train N tokens at a predicted step time.

All arithmetic of the run budget lives here (the CLI only renders it):

- steps       = ceil(tokens / tokens_per_step)
- wall time   = steps * step_time_s                                  (s; days = / 86,400)
- GPU-hours   = gpus * wall time / 3600
- energy      = GPU-hours * power_per_gpu_w * pue / 1e6              (MWh; power defaults to the
  profile's board power limit, ``device.tdp_w``, so it is an upper bound for the GPUs themselves:
  CPUs, NICs and switches are not counted; PUE scales IT power to facility power)
- cost        = GPU-hours * price_per_gpu_hour                       (USD)

The same shape as llm-analysis' ``total_training_latency`` / GPU-hours (github.com/cli99/llm-analysis),
with energy and PUE added. The defaults below are stated in every result (``assumptions``).
"""

from __future__ import annotations

import math

from pydantic import Field

from ..errors import SpecError
from ..specs import HardwareProfile
from ..units import check_number
from .result import Estimate, Result

#: Default price of one GPU-hour, USD. A round figure for on-demand H100-class cloud capacity in
#: 2024-2025 (list prices ranged about $2-4 per H100-hour); it is a placeholder, not a quote:
#: pass ``--price-per-gpu-hour`` for your own contract.
DEFAULT_PRICE_PER_GPU_HOUR = 2.0
#: Default power usage effectiveness (facility power / IT power): 1.1, Google's fleet-wide
#: trailing-twelve-month PUE of 1.10 (2023, https://www.google.com/about/datacenters/efficiency/);
#: the Uptime Institute's industry average is ~1.56 (2024 survey). Pass ``--pue`` to change it.
DEFAULT_PUE = 1.1
SECONDS_PER_DAY = 86_400.0


class RunBudget(Result):
    """Days, GPU-hours, energy and cost of training ``tokens`` tokens with one plan."""

    tokens: float = Field(description="tokens to train")
    tokens_per_step: int = Field(description="tokens per optimizer step of the plan")
    steps: int = Field(description="optimizer steps, ceil(tokens / tokens_per_step)")
    step_time_s: float = Field(description="predicted step time, s")
    gpus: int = Field(description="GPUs of the plan")
    wall_time_s: float = Field(description="steps * step time, s (no restarts, checkpoints or evaluation)")
    days: float = Field(description="wall time in days")
    gpu_hours: float = Field(description="gpus * wall time / 3600")
    power_per_gpu_w: float | None = Field(description="power per GPU used for energy, W (None = unknown)")
    pue: float = Field(description="power usage effectiveness applied to the GPU power")
    energy_mwh: float | None = Field(description="GPU-hours * power * PUE, MWh (None when power is unknown)")
    price_per_gpu_hour: float = Field(description="price of one GPU-hour, USD")
    cost_usd: float = Field(description="GPU-hours * price, USD")
    assumptions: list[str] = Field(description="where each default came from")


def energy_mwh(gpu_hours: float, power_per_gpu_w: float | None, pue: float) -> float | None:
    """GPU-hours * power * PUE, MWh (None when the power is unknown)."""
    return None if power_per_gpu_w is None else gpu_hours * power_per_gpu_w * pue / 1e6


def cost_usd(gpu_hours: float, price_per_gpu_hour: float) -> float:
    """GPU-hours * price, USD."""
    return gpu_hours * price_per_gpu_hour


def run_budget(est: Estimate, tokens: float, hardware: HardwareProfile, *,
               price_per_gpu_hour: float | None = None, power_per_gpu_w: float | None = None,
               pue: float | None = None) -> RunBudget:
    """The run budget of ``tokens`` tokens at ``est``'s step time (module docstring for the formulas).

    ``None`` arguments take the defaults: price ``DEFAULT_PRICE_PER_GPU_HOUR``, power the profile's
    ``device.power_limit_w`` or else ``device.tdp_w`` (energy is None when the profile has none), PUE ``DEFAULT_PUE``."""
    check_number(tokens, "--tokens", above=0)
    check_number(price_per_gpu_hour, "--price-per-gpu-hour", above=0)
    check_number(power_per_gpu_w, "--power-per-gpu", above=0)
    if pue is not None and not (math.isfinite(pue) and pue >= 1):
        raise SpecError(f"{pue:g} must be a finite number >= 1 (facility power / IT power)", field="--pue")
    notes = []
    if price_per_gpu_hour is None:
        price_per_gpu_hour = DEFAULT_PRICE_PER_GPU_HOUR
        notes.append(f"price ${price_per_gpu_hour:.2f}/GPU-hour: default placeholder (on-demand H100-class "
                     "cloud list prices were ~$2-4 in 2024-2025); set --price-per-gpu-hour")
    if pue is None:
        pue = DEFAULT_PUE
        notes.append(f"PUE {pue:g}: default (Google fleet-wide PUE 1.10, 2023); set --pue")
    if power_per_gpu_w is None:
        field = "device.power_limit_w" if hardware.device.power_limit_w is not None else "device.tdp_w"
        power_per_gpu_w = hardware.device.power_limit_w or hardware.device.tdp_w
        if power_per_gpu_w is None:
            notes.append(f"{hardware.name} has no device.tdp_w: energy not computed; set --power-per-gpu")
        else:
            src = hardware.source_for(field) or "profile"
            notes.append(f"power {power_per_gpu_w:g} W per GPU: the board power limit (an upper bound; "
                         f"CPUs, NICs, switches not counted) — {src}")
    tps = est.training.tokens_per_step
    steps = math.ceil(tokens / tps)
    wall = steps * est.step_time_s
    gpu_hours = est.gpus * wall / 3600.0
    energy = energy_mwh(gpu_hours, power_per_gpu_w, pue)
    return RunBudget(
        tokens=tokens, tokens_per_step=tps, steps=steps, step_time_s=est.step_time_s, gpus=est.gpus,
        wall_time_s=wall, days=wall / SECONDS_PER_DAY, gpu_hours=gpu_hours, power_per_gpu_w=power_per_gpu_w,
        pue=pue, energy_mwh=energy, price_per_gpu_hour=price_per_gpu_hour,
        cost_usd=cost_usd(gpu_hours, price_per_gpu_hour), assumptions=notes,
    )
