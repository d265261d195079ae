"""What ``paraplan run`` returns: per-stage rows, run totals, the levers on days, the comparison."""

from __future__ import annotations

from pydantic import Field

from ..cost.result import Estimate, Result
from .failures import StageReliability


class StageRow(Result):
    """One priced stage of the run."""

    name: str = Field(description="stage name")
    tokens: float = Field(description="tokens trained")
    seq_length: int = Field(description="tokens per sequence")
    global_batch_size: int = Field(description="sequences per step")
    tokens_per_step: int = Field(description="tokens per step")
    gpus: int = Field(description="GPUs")
    layout: str = Field(description="the layout (describe() and schedule)")
    planned: bool = Field(description="True when paraplan searched the layout")
    fits: bool = Field(description="the layout fits in HBM by paraplan's memory model")
    peak_memory_gib: float = Field(description="worst stage's peak memory, GiB")
    step_time_s: float = Field(description="predicted step time, s")
    mfu: float = Field(description="model FLOPs utilisation")
    model_tflops_per_gpu: float = Field(description="model TFLOP/s per GPU")
    steps: int = Field(description="optimizer steps, ceil(tokens / tokens per step)")
    useful_days: float = Field(description="steps x step time, days")
    wall_days: float = Field(description="with failures, restarts and checkpoints, days")
    gpu_hours: float = Field(description="gpus x wall time, h")
    goodput: float = Field(description="useful / wall time")
    reliability: StageReliability = Field(description="checkpoints and failures of the stage")
    estimate: Estimate = Field(description="the step estimate")


class RunTotals(Result):
    """The whole run."""

    tokens: float = Field(description="tokens trained")
    useful_days: float = Field(description="failure-free training time, days")
    wall_days: float = Field(description="expected wall time, days")
    gpu_hours_useful: float = Field(description="GPU-hours of the failure-free time")
    gpu_hours: float = Field(description="GPU-hours of the wall time (what the allocation costs)")
    goodput: float = Field(description="useful / wall time over the run")
    checkpoint_stall_days: float = Field(description="training waiting for checkpoints, days")
    failure_days: float = Field(description="lost to unexpected interruptions (restarts, redone work), days")
    planned_days: float = Field(description="lost to planned interruptions, days")
    failures: float = Field(description="expected unexpected interruptions")
    planned: float = Field(description="expected planned interruptions")
    energy_mwh: float | None = Field(description="GPU-hours x power x PUE, MWh (None when power is unknown)")
    cost_usd: float = Field(description="GPU-hours x price, USD")
    power_per_gpu_w: float | None = Field(description="power per GPU used, W")
    pue: float = Field(description="PUE used")
    price_per_gpu_hour: float = Field(description="USD per GPU-hour used")


class Lever(Result):
    """What a 2x improvement of one part of the run saves."""

    key: str = Field(description="step_time, failure_rate, restart or checkpoint")
    label: str = Field(description="the change in words")
    wall_days: float = Field(description="the run's wall time with the change, days")
    days_saved: float = Field(description="days saved against the base")
    share: float = Field(description="days saved / base wall days")


class ReferenceComparison(Result):
    """paraplan's totals beside the published ones."""

    gpu_hours: float | None = Field(description="reported GPU-hours")
    predicted_gpu_hours: float = Field(description="paraplan's GPU-hours")
    error: float | None = Field(description="predicted / reported - 1")
    goodput_min: float | None = Field(description="reported lower bound of the effective training time")
    goodput: float = Field(description="paraplan's goodput")
    goodput_in_band: bool | None = Field(description="goodput above the reported bound (and below 1)")
    source: str = Field(description="where the reported figures are published")


class RunResult(Result):
    """``paraplan run`` result."""

    name: str = Field(description="the run plan's name")
    model: str = Field(description="model")
    hardware: str = Field(description="hardware profile")
    storage: dict | None = Field(description="the storage tier used (profile with the plan's overrides)")
    checkpoint_mode: str = Field(description="sync, async or none")
    settings: list[str] = Field(description="--set KEY=VALUE applied to the plan")
    stages: list[StageRow] = Field(description="the stages in order")
    totals: RunTotals = Field(description="the whole run")
    levers: list[Lever] = Field(description="2x improvements, most days saved first")
    headline: str = Field(description="the largest lever on days, in one sentence")
    step_bottleneck: str = Field(description="the bottleneck of the stage with the most wall days")
    reference: ReferenceComparison | None = Field(description="published figures beside paraplan's")
    assumptions: list[str] = Field(description="defaults and the plan's notes")
    sources: dict[str, str] = Field(description="the plan's citations")
