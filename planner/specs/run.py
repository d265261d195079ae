"""A run plan: the stages of a whole training run, its checkpointing and its failure model.

Read from YAML or JSON by ``planner.run.loader`` and priced stage by stage by ``planner.run``
(``paraplan run PLAN``). Token counts accept ``252M`` / ``2.87T`` text; seconds are plain numbers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..units import parse_count
from .base import Spec
from .layout import RankOrder, Schedule
from .training import Precision, Recompute


class StageLayout(Spec):
    """The layout of one stage (what ``estimate`` takes as flags); dp = gpus / (tp * pp * cp)."""

    tp: int = Field(1, gt=0, description="tensor-parallel degree")
    pp: int = Field(1, gt=0, description="pipeline-parallel degree")
    vpp: int = Field(1, gt=0, description="virtual stages per pipeline rank (interleaved 1F1B when > 1)")
    cp: int = Field(1, gt=0, description="context-parallel degree")
    cp_kind: Literal["ring", "allgather"] | None = Field(None, description="context-parallel K/V exchange")
    zero_stage: int = Field(0, ge=0, le=3, description="ZeRO stage")
    fsdp: bool = Field(False, description="FSDP2 full sharding")
    sequence_parallel: bool = Field(False, description="Megatron sequence parallelism")
    schedule: Schedule | None = Field(None, description="pipeline schedule (default 1f1b; interleaved with vpp > 1)")
    stage_layers: list[int] | None = Field(None, description="layers per pipeline stage (default: the framework's split)")
    rank_order: RankOrder = Field("tp-cp-pp-dp", description="rank order of the axes")
    micro_batch_size: int = Field(1, gt=0, description="sequences per micro-batch")
    recompute: Recompute = Field("none", description="activation recomputation")


class StageSpec(Spec):
    """One stage of the run: tokens at one sequence length and batch, on one layout (or planned)."""

    name: str = Field(description="stage name")
    tokens: float = Field(gt=0, description="tokens trained in this stage (text: 252M, 2.87T)")
    seq_length: int = Field(gt=0, description="tokens per sequence")
    global_batch_size: int | None = Field(None, gt=0, description="sequences per step")
    tokens_per_step: int | None = Field(None, gt=0, description="tokens per step (instead of global_batch_size)")
    gpus: int | None = Field(None, gt=0, description="GPUs of this stage (None = the plan's gpus)")
    layout: StageLayout | Literal["plan"] = Field(
        "plan", description="the stage's layout, or 'plan' to let paraplan search it for this stage")

    @field_validator("tokens", mode="before")
    @classmethod
    def _count(cls, value):
        if isinstance(value, str):
            return parse_count(value, field="tokens")
        return value

    @model_validator(mode="after")
    def _batch(self):
        if (self.global_batch_size is None) == (self.tokens_per_step is None):
            raise ValueError(f"stage '{self.name}': give exactly one of global_batch_size or tokens_per_step")
        if self.tokens_per_step is not None and self.tokens_per_step % self.seq_length:
            raise ValueError(f"stage '{self.name}': tokens_per_step({self.tokens_per_step}) % "
                             f"seq_length({self.seq_length}) = {self.tokens_per_step % self.seq_length} != 0")
        return self

    @property
    def sequences_per_step(self) -> int:
        """Global batch in sequences."""
        return self.global_batch_size or self.tokens_per_step // self.seq_length


class FailureSpec(Spec):
    """How often the job is interrupted and what a restart costs (planner.run.failures)."""

    rate_per_gpu_hour: float | str = Field(
        "llama3", description="unexpected interruptions per GPU-hour, or a published fleet's name "
        "(llama3, meta-rsc1, meta-rsc2; planner.run.fleets)")
    planned_rate_per_gpu_hour: float | str = Field(
        "llama3", description="planned interruptions (maintenance) per GPU-hour, or a fleet's name; 0 = none")
    detect_s: float | None = Field(None, ge=0, description="seconds from a failure to its detection (None = default)")
    reschedule_s: float | None = Field(
        None, ge=0, description="seconds to reschedule and start the job again, before loading (None = default)")
    warmup_steps: float = Field(1.0, ge=0, description="steps at the start of a restarted job that do no new work")

    @field_validator("rate_per_gpu_hour", "planned_rate_per_gpu_hour")
    @classmethod
    def _non_negative(cls, value):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"{value} must be >= 0")
        return value


class CheckpointSpec(Spec):
    """How the run checkpoints."""

    mode: Literal["sync", "async", "none"] = Field(
        "async", description="sync (training waits for the write), async (waits for the copy to host memory), none")
    interval_s: float | None = Field(
        None, gt=0, description="training seconds between checkpoints (None = the optimum, Young/Daly)")


class StorageOverride(Spec):
    """The run's storage tier, field by field over the hardware profile's (``storage`` section)."""

    kind: str | None = Field(None, description="storage technology")
    node_write_gbps: float | None = Field(None, gt=0, description="write bandwidth per node, GB/s")
    node_read_gbps: float | None = Field(None, gt=0, description="read bandwidth per node, GB/s")
    aggregate_write_gbps: float | None = Field(None, gt=0, description="write bandwidth of the tier, GB/s")
    aggregate_read_gbps: float | None = Field(None, gt=0, description="read bandwidth of the tier, GB/s")


class ReferenceFigures(Spec):
    """Published figures of the run the plan reproduces, printed beside paraplan's."""

    gpu_hours: float | None = Field(None, gt=0, description="reported GPU-hours")
    goodput_min: float | None = Field(None, gt=0, le=1, description="reported lower bound of effective training time")
    source: str = Field(description="where the figures are published")


class RunPlanSpec(Spec):
    """A whole training run: model, hardware, stages, checkpointing, failures; sources for its figures."""

    kind: Literal["paraplan-run"] = Field("paraplan-run", description="file kind")
    version: Literal[1] = Field(1, description="run plan format version")
    name: str = Field(description="what run this is")
    model: str = Field(description="zoo model name, model YAML or HF config.json")
    hardware: str = Field(description="hardware profile name or YAML")
    calibration: str | None = Field(None, description="calibration overlay applied on the profile")
    gpus: int = Field(gt=0, description="GPUs of a stage that names none")
    recipe: str = Field("megatron-lm", description="framework recipe of every stage")
    precision: Precision = Field("bf16", description="compute datatype")
    storage: StorageOverride | None = Field(None, description="the run's storage tier over the profile's")
    failures: FailureSpec = Field(default_factory=FailureSpec, description="failure model")
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec, description="checkpointing")
    price_per_gpu_hour: float | None = Field(None, gt=0, description="USD per GPU-hour (None = the budget's default)")
    power_per_gpu_w: float | None = Field(None, gt=0, description="W per GPU (None = the profile's tdp_w)")
    pue: float | None = Field(None, ge=1, description="power usage effectiveness (None = the budget's default)")
    stages: list[StageSpec] = Field(min_length=1, description="the stages in training order")
    reference: ReferenceFigures | None = Field(None, description="published figures to compare with")
    sources: dict[str, str] = Field(default_factory=dict, description="citation per field path (stages.0.tokens)")
    notes: list[str] = Field(default_factory=list, description="assumptions where the source is silent")
