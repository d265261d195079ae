"""Predicted (planner.cost.estimate) vs measured step time and peak memory per layout. Torch-free."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from planner.cost import estimate
from planner.errors import SpecError
from planner.specs import HardwareProfile
from planner.work.context import cp_collective_calls
from planner.work.ops import Collective
from planner.work.step import build_step

from .job import JobSpec
from .results import JobResult, ResultsFile

CPU_MEMORY_NOTE = (
    "CPU memory is tracked tensor storage of an fp32 run; the cost model prices bf16 activations "
    "(torch-amp recipe: fp32 weights, grads and Adam state), so activation bytes differ by up to 2x"
)


class ReportRow(BaseModel):
    """One measured layout against its prediction; seconds, bytes, percent."""

    model_config = ConfigDict(extra="forbid")
    layout: str = Field(description="layout")
    nproc: int = Field(description="ranks")
    device: str = Field(description="device measured on")
    measured_step_s: float | None = Field(description="median step time (slowest rank), s")
    measured_min_s: float | None = Field(description="fastest timed step, s")
    measured_max_s: float | None = Field(description="slowest timed step, s")
    predicted_step_s: float | None = Field(description="cost-model step time, s")
    step_error_pct: float | None = Field(description="100 * (predicted - measured) / measured")
    measured_peak_bytes: float | None = Field(description="largest per-rank peak, bytes")
    predicted_peak_bytes: float | None = Field(description="cost-model peak of the largest stage, bytes")
    memory_error_pct: float | None = Field(description="100 * (predicted - measured) / measured")
    memory_method: str | None = Field(description="how memory was measured")
    numerics_passed: bool | None = Field(description="numerics check result")
    measured_calls: dict[str, int] | None = Field(None, description="rank 0's collective calls of one step, by kind")
    predicted_calls: dict[str, int] | None = Field(None, description="the calls the cost model prices for rank 0")
    partial: bool = Field(description="job did not finish")
    note: str = Field("", description="error or why a prediction is missing")


class ValidationReport(BaseModel):
    """``paraplan validate report``."""

    model_config = ConfigDict(extra="forbid")
    hardware: str = Field(description="hardware profile predicted with")
    calibration: str | None = Field(description="overlay applied, if any")
    rows: list[ReportRow] = Field(description="per layout")
    notes: list[str] = Field(default_factory=list, description="caveats")


def _pct(pred: float | None, meas: float | None) -> float | None:
    if pred is None or not meas:
        return None
    return 100.0 * (pred - meas) / meas


def predicted_collective_calls(spec: JobSpec, pp_rank: int = 0) -> dict[str, int]:
    """Collective calls of one step that the cost model prices for a GPU at pipeline position ``pp_rank``:
    the tensor-parallel collectives of every micro-batch (recompute replays included), the data-parallel
    ones (ZeRO-3 / FSDP: one per sharded unit; a bucketed DDP / ZeRO-1 reduction is priced as one call), the
    optimizer step's own (sequence-parallel norm gradients redistributed over tp) and
    one send and one receive per micro-batch and neighbouring model chunk (activation forward, gradient
    back; with ``vpp`` chunks per GPU, chunk ``c`` sits on pipeline position ``c mod pp``)."""
    step = build_step(spec.effective_model(), spec.training_spec(), spec.layout)
    mb, counts = step.micro_batches, Counter()
    for stage in step.stages:
        if stage.index % spec.layout.pp != pp_rank:
            continue
        for block, repeats in stage.blocks:
            for ops in (block.forward, block.backward_input, block.backward_weight, block.recompute):
                for op in ops:
                    if isinstance(op, Collective) and op.axis != "cp":
                        counts[op.kind] += repeats * mb
                for kind, n in cp_collective_calls(ops).items():  # ring sends (one send, one receive), cp gathers
                    for k in (("send", "recv") if kind == "send-recv" else (kind,)):
                        counts[k] += n * repeats * mb
        for op in stage.per_microbatch_comm:
            counts[op.kind] += mb * op.calls
        for op in stage.per_step_comm + stage.optimizer_comm:  # the optimizer's own collectives (DTensor SP norms)
            counts[op.kind] += op.calls
    lay = spec.layout
    chunks = lay.pp * lay.vpp
    for c in range(pp_rank, chunks, lay.pp) if lay.pp > 1 else ():
        neighbours = (c > 0) + (c < chunks - 1)
        counts["send"] += neighbours * mb
        counts["recv"] += neighbours * mb
    return {k: v for k, v in sorted(counts.items()) if v}


def _rank0_calls(job: JobResult) -> dict[str, int] | None:
    first = min(job.ranks, key=lambda r: r.rank, default=None)
    return first.collective_calls if first is not None else None


def build_report(results: ResultsFile, hardware: HardwareProfile, hardware_name: str,
                 calibration: str | None) -> ValidationReport:
    """Predict every job of ``results`` on ``hardware`` and set it against what was measured."""
    rows = []
    for j in results.jobs:
        spec = j.job
        pred_t = pred_m = None
        note = j.error or ""
        try:
            est = estimate(spec.effective_model(), hardware, spec.training_spec(), spec.layout)
            pred_t, pred_m = est.step_time_s, est.peak_memory_bytes
        except SpecError as exc:
            note = note or f"no prediction: {exc}"
        rows.append(ReportRow(
            layout=j.layout, nproc=j.nproc, device=j.device, measured_step_s=j.step_time_s,
            measured_min_s=j.step_time_min_s, measured_max_s=j.step_time_max_s, predicted_step_s=pred_t,
            step_error_pct=_pct(pred_t, j.step_time_s), measured_peak_bytes=j.peak_memory_bytes,
            predicted_peak_bytes=pred_m, memory_error_pct=_pct(pred_m, j.peak_memory_bytes),
            memory_method=j.memory_method, numerics_passed=j.numerics_passed, partial=j.partial, note=note,
            measured_calls=_rank0_calls(j), predicted_calls=predicted_collective_calls(spec) if pred_t else None,
        ))
    notes = []
    if any(r.device == "cpu" and j.job.compute_dtype == "fp32" for r, j in zip(rows, results.jobs)):
        notes.append(CPU_MEMORY_NOTE)
    return ValidationReport(hardware=hardware_name, calibration=calibration, rows=rows, notes=notes)
