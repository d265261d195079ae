"""Result models of validation jobs and how per-rank status files become one results file. Torch-free.

Each rank keeps ``rank_<r>.json`` in the job folder up to date (atomically: temp file + rename), so a job
that dies or hangs still leaves what every rank measured and how far it got.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import SpecError, format_validation_error
from planner.io import read_json, write_atomic  # noqa: F401 - write_atomic re-exported

from .benchspec import BenchSpec
from .job import JobSpec, layout_text

RESULTS_SCHEMA_VERSION = 1
TRACE_DIR = "trace"
"""Sub-folder of a job's folder holding one profiler trace per rank (validate.tracing)."""
SIDECAR = "paraplan_job.json"
"""File written next to a job's traces: the job it ran and, once known, its untraced step times."""
SIDECAR_KIND = "paraplan-traced-job"
PHASE_ORDER = ("start", "init", "reference", "build", "step", "sync", "collectives", "memory", "done")
"""Phases in the order a rank passes them; ``sync`` = waiting for the other ranks at a step's start."""


class Model(BaseModel):
    """Results refuse unknown keys (so a wrong file is caught when read)."""

    model_config = ConfigDict(extra="forbid")


class NumericsResult(Model):
    """Step 0 of the parallel run against the single-process reference (relative errors, see numerics)."""

    passed: bool = Field(description="every error within tolerance")
    tolerance: float = Field(description="allowed relative error")
    reference_loss: float | None = Field(None, description="reference loss (ranks holding the loss)")
    loss: float | None = Field(None, description="parallel loss (ranks holding the loss)")
    loss_error: float | None = Field(None, description="|loss - reference| / |reference|")
    grad_error: float = Field(description="worst gradient relative error")
    grad_worst: str = Field(description="parameter with the worst gradient error")
    param_error: float = Field(description="worst relative error of parameters after the optimizer step")
    param_worst: str = Field(description="parameter with the worst post-step error")
    tensors_checked: int = Field(description="parameters this rank compared")


class RankResult(Model):
    """What one rank did and measured; seconds and bytes."""

    rank: int = Field(description="global rank")
    coords: dict[str, int] = Field(default_factory=dict, description="coordinate on the (dp, pp, tp) mesh")
    pid: int | None = Field(None, description="process id")
    status: Literal["running", "done", "failed", "hung", "killed"] = Field("running", description="outcome")
    phase: str = Field("start", description="last phase reached")
    step: int = Field(-1, description="last step started (-1 = none)")
    heartbeat_unix: float = Field(0.0, description="time of the last update, Unix seconds")
    step_times_s: list[float] = Field(default_factory=list, description="timed steps, s")
    median_step_s: float | None = Field(None, description="median of step_times_s, s")
    peak_memory_bytes: float | None = Field(None, description="peak memory, bytes")
    memory_method: str | None = Field(None, description="how memory was measured")
    losses: list[float] = Field(default_factory=list, description="loss per step (ranks holding it)")
    numerics: NumericsResult | None = Field(None, description="numerics check (step 0)")
    collective_calls: dict[str, int] | None = Field(None, description="collective calls of one step, by kind")
    error: str | None = Field(None, description="error message if the rank failed")

    def progress(self) -> tuple[int, int]:
        """(step, phase index): how far the rank got, for finding the one that hangs."""
        base = self.phase.split(" ")[0]
        return self.step, PHASE_ORDER.index(base) if base in PHASE_ORDER else 0


class JobResult(Model):
    """One layout run for real."""

    layout: str = Field(description="layout, e.g. tp=2,pp=2,dp=1")
    job: JobSpec = Field(description="what was run")
    nproc: int = Field(description="processes")
    device: str = Field("", description="device the ranks ran on (cpu, or the GPU name)")
    torch_version: str = Field("", description="torch version")
    started_unix: float = Field(0.0, description="start time, Unix seconds")
    wall_s: float = Field(0.0, description="wall time of the whole job incl. start-up, s")
    step_time_s: float | None = Field(None, description="max over ranks of the median step time, s")
    step_time_min_s: float | None = Field(None, description="fastest timed step of the slowest rank, s")
    step_time_max_s: float | None = Field(None, description="slowest timed step of the slowest rank, s")
    peak_memory_bytes: float | None = Field(None, description="largest per-rank peak, bytes")
    memory_method: str | None = Field(None, description="how memory was measured")
    numerics_passed: bool | None = Field(None, description="all ranks passed the numerics check")
    partial: bool = Field(False, description="the job did not finish on every rank")
    error: str | None = Field(None, description="one line on what went wrong")
    trace_dir: str | None = Field(None, description="folder of the ranks' profiler traces and the job's description "
                                  "(calibrate --trace reads it), if the job wrote them")
    ranks: list[RankResult] = Field(default_factory=list, description="per-rank results")


class BenchResult(Model):
    """Microbenchmarks of every rank (see validate.microbench for the keys)."""

    spec: BenchSpec = Field(description="what was measured")
    partial: bool = Field(False, description="some rank did not finish")
    error: str | None = Field(None, description="one line on what went wrong")
    ranks: list[dict[str, Any]] = Field(default_factory=list, description="per-rank measurements")
    status: list[RankResult] = Field(default_factory=list, description="per-rank status")


class ResultsFile(Model):
    """What ``validate run`` (or a SLURM job) writes and ``calibrate`` / ``validate report`` read."""

    schema_version: Literal[1] = Field(RESULTS_SCHEMA_VERSION, description="results schema version")
    jobs: list[JobResult] = Field(default_factory=list, description="layouts run")
    microbench: BenchResult | None = Field(None, description="microbenchmark results (calibrate)")


def rank_file(job_dir: Path, rank: int) -> Path:
    """Status file of ``rank`` in ``job_dir``."""
    return Path(job_dir) / f"rank_{rank}.json"


def read_ranks(job_dir: Path, nproc: int) -> list[RankResult]:
    """Every rank's last status (a rank that never wrote one appears as phase 'start')."""
    out = []
    for r in range(nproc):
        path = rank_file(job_dir, r)
        try:
            out.append(RankResult.model_validate_json(path.read_text()))
        except (OSError, ValueError):
            out.append(RankResult(rank=r))
    return out


def assemble(job: JobSpec, ranks: list[RankResult], *, error: str | None, wall_s: float, started: float,
             device: str = "", torch_version: str = "", job_dir: Path | None = None) -> JobResult:
    """Fold per-rank results into a JobResult; ``partial`` when any rank did not finish. With ``job_dir``,
    its trace folder is recorded when the job wrote one."""
    done = [r for r in ranks if r.status == "done"]
    medians = [r for r in done if r.median_step_s is not None]
    slowest = max(medians, key=lambda r: r.median_step_s) if medians else None
    mems = [r.peak_memory_bytes for r in ranks if r.peak_memory_bytes is not None]
    checks = [r.numerics for r in ranks if r.numerics is not None]
    partial = len(done) != len(ranks) or error is not None
    return JobResult(
        layout=layout_text(job.layout), job=job, nproc=len(ranks), device=device, torch_version=torch_version,
        started_unix=started, wall_s=wall_s,
        step_time_s=slowest.median_step_s if slowest and not partial else None,
        step_time_min_s=min(slowest.step_times_s) if slowest and not partial else None,
        step_time_max_s=max(slowest.step_times_s) if slowest and not partial else None,
        peak_memory_bytes=max(mems) if mems else None,
        memory_method=next((r.memory_method for r in ranks if r.memory_method), None),
        numerics_passed=all(c.passed for c in checks) if checks and not partial else (
            False if any(not c.passed for c in checks) else None),
        partial=partial, error=error, ranks=ranks, trace_dir=_trace_dir(job_dir),
    )


def _trace_dir(job_dir: Path | None) -> str | None:
    if job_dir is None:
        return None
    folder = Path(job_dir).resolve() / TRACE_DIR
    return str(folder) if (folder / SIDECAR).exists() else None


def describe_hang(ranks: list[RankResult], timeout_s: float) -> str:
    """One line naming the rank(s) that stopped making progress before the timeout."""
    pending = [r for r in ranks if r.status not in ("done",)]
    if not pending:
        return f"job timed out after {timeout_s:g} s while shutting down"
    low = min(r.progress() for r in pending)
    stuck = [r for r in pending if r.progress() == low]
    waiting = [r for r in pending if r.progress() != low]
    where = f"phase '{stuck[0].phase}'" + (f" of step {stuck[0].step}" if stuck[0].step >= 0 else "")
    names = ", ".join(str(r.rank) for r in stuck)
    msg = f"rank {names} hung: no progress past {where} within the {timeout_s:g} s timeout"
    if waiting:
        msg += f"; ranks {', '.join(str(r.rank) for r in waiting)} were waiting for it"
    return msg


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return statistics.median(values)


def load_results(path: str | Path) -> ResultsFile:
    """Read a results file; SpecError naming the file when it is missing or malformed."""
    p = Path(path)
    data = read_json(p, "results")
    try:
        return ResultsFile.model_validate(data)
    except ValueError as exc:
        raise SpecError(format_validation_error(exc), source=str(p)) from None


def merge_results(files: list[ResultsFile]) -> ResultsFile:
    """Jobs of every file, in order; the last file's microbenchmarks that are present win."""
    jobs = [j for f in files for j in f.jobs]
    bench = None
    for f in files:
        bench = f.microbench or bench
    return ResultsFile(jobs=jobs, microbench=bench)


def write_sidecar(folder: Path, job: JobSpec, step_times_s: list[float] | None = None) -> None:
    """Describe ``job`` next to its traces in ``folder`` (atomically), with the slowest rank's untraced step
    times when known."""
    import json

    Path(folder).mkdir(parents=True, exist_ok=True)
    data = {"kind": SIDECAR_KIND, "job": job.model_dump(mode="json"), "untraced_step_times_s": step_times_s}
    write_atomic(Path(folder) / SIDECAR, json.dumps(data, indent=1))
