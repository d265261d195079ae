"""Read a trials folder back (validate.trials): every trial's traces, one calibration on them, and the plans
re-ranked by their measured steps. Needs HTA to read the traces.

How far each prediction was is told twice: as planned (the base profile, what the search ranked by), and
calibrated on the *other* trials (leave-one-out: each trial is predicted by an overlay it did not help fit).
The overlay written next to the trials is fitted on all of them, for the next ``plan --calibration``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from planner.errors import SpecError

from .calibrate import calibrate, overlay_yaml
from .results import TRACE_DIR, write_atomic
from .traced_jobs import load_validator_job
from .trials import Model, read_manifest

OVERLAY = "overlay.yaml"


class TrialRow(Model):
    """One trial: predicted (as planned, and calibrated on the other trials) vs measured step, s / %."""

    index: int = Field(description="trial number")
    plan_rank: int = Field(description="rank the search gave the plan (predicted order)")
    measured_rank: int | None = Field(None, description="rank by measured step (1 = fastest)")
    label: str = Field(description="the plan")
    measured_s: float | None = Field(None, description="measured median step, s (None: not run)")
    predicted_plan_s: float = Field(description="the planner's step time, s")
    error_plan_pct: float | None = Field(None, description="100 * (planned - measured) / measured")
    predicted_loo_s: float | None = Field(None, description="predicted with an overlay fitted on the other trials, s")
    error_loo_pct: float | None = Field(None, description="100 * (leave-one-out - measured) / measured")
    note: str = Field("", description="why a trial has no measurement")


class TrialsReport(Model):
    """``paraplan trials collect``."""

    folder: str = Field(description="trials folder")
    hardware: str = Field(description="base profile")
    overlay: str | None = Field(None, description="overlay fitted on every measured trial (written next to them)")
    rows: list[TrialRow] = Field(description="trials in measured order (not run last)")
    best_predicted: str = Field(description="the plan the search ranked first among the trials")
    best_measured: str | None = Field(None, description="the plan that measured fastest")
    notes: list[str] = Field(default_factory=list, description="skipped plans and fit notes")


def _pct(pred: float | None, meas: float | None) -> float | None:
    return None if pred is None or not meas else 100.0 * (pred - meas) / meas


def collect_trials(folder: str | Path, date: str | None = None) -> TrialsReport:
    """Read every run trial of ``folder``, fit, re-rank (see the module docstring); writes ``overlay.yaml``."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    jobs, rows = {}, {}
    for t in manifest.trials:
        trace = folder / f"job_{t.index}" / TRACE_DIR
        rows[t.index] = TrialRow(index=t.index, plan_rank=t.plan_rank, label=t.label, predicted_plan_s=t.predicted_step_s)
        if not trace.is_dir():
            rows[t.index].note = f"not run (no {trace})"
            continue
        job = load_validator_job(trace)
        job.name = f"#{t.index} {job.name}"  # trials may share a layout (other micro-batch): names stay distinct
        jobs[t.index] = job
    if not jobs:
        raise SpecError(f"{folder}: no trial has run yet (paraplan trials run DIR, or sbatch DIR/trials.sbatch)", field="DIR")
    for k, job in jobs.items():
        row = rows[k]
        row.measured_s = job.measured_step_s
        row.error_plan_pct = _pct(row.predicted_plan_s, row.measured_s)
        others = [j for i, j in jobs.items() if i != k]
        if others:
            rep = calibrate(manifest.hardware, None, [*others, job], job.name, date=date)
            row.predicted_loo_s = next(r.predicted_after_s for r in rep.layouts if r.held_out)
            row.error_loo_pct = _pct(row.predicted_loo_s, row.measured_s)
    full = calibrate(manifest.hardware, None, list(jobs.values()), None, date=date)
    write_atomic(folder / OVERLAY, overlay_yaml(full))
    measured = sorted((r for r in rows.values() if r.measured_s is not None), key=lambda r: r.measured_s)
    for i, r in enumerate(measured, 1):
        r.measured_rank = i
    ordered = measured + sorted((r for r in rows.values() if r.measured_s is None), key=lambda r: r.index)
    best_pred = min(rows.values(), key=lambda r: r.plan_rank)
    return TrialsReport(folder=str(folder), hardware=manifest.hardware, overlay=str(folder / OVERLAY), rows=ordered,
                        best_predicted=best_pred.label, best_measured=measured[0].label if measured else None,
                        notes=[f"skipped: {s}" for s in manifest.skipped] + full.notes)
