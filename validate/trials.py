"""Trial runs of the top plans (what NeMo's AutoConfigurator and DeepSpeed's autotuner do): each plan run for a
few steps with the profiler on, read back, calibrated on, and the plans re-ranked by their measured steps.
Torch-free.

A trials folder holds ``trials.json`` (the manifest: each trial's plan, scenario and launcher), one task per
trial in the validator's format (``job_<k>.json``, run into ``job_<k>/`` with its traces in ``job_<k>/trace``)
and ``trials.sbatch`` (one SLURM job array, a task per trial). The launcher today is the validator's own job
(``validate.worker``: PyTorch's tensor / pipeline / FSDP APIs on the plan's layout); a framework launcher writes
its own tasks and traces into the same folders, and ``collect`` reads them through the manifest's scenario.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import SpecError
from planner.specs import Layout, ModelSpec, TrainingSpec

from .job import JobSpec, layout_text
from .results import write_atomic

MANIFEST = "trials.json"
MANIFEST_KIND = "paraplan-trials"
SBATCH = "trials.sbatch"
LAUNCHER = "validator"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Trial(Model):
    """One plan to run: where it ranked, what the planner predicted, the job that runs it."""

    index: int = Field(description="trial number (its task is job_<index>.json)")
    plan_rank: int = Field(description="the plan's rank in the search (1 = best predicted)")
    label: str = Field(description="the plan as the planner prints it")
    layout: str = Field(description="layout, e.g. tp=1,pp=1,dp=2,zero=3")
    predicted_step_s: float = Field(description="the planner's step time for the plan, s")
    model: ModelSpec = Field(description="the model")
    training: TrainingSpec = Field(description="the plan's training recipe")
    plan_layout: Layout = Field(description="the plan's layout")
    launcher: str = Field(LAUNCHER, description="what runs the trial: validator (validate.worker)")
    export: str | None = Field(None, description="framework export written into plan_<index>/, if any")


class TrialsManifest(Model):
    """``trials.json``."""

    kind: str = Field(MANIFEST_KIND, description="file kind")
    hardware: str = Field(description="hardware profile the plans were priced on (name or path)")
    calibration: str | None = Field(None, description="overlay the plans were priced with")
    gpus: int = Field(description="ranks of every trial")
    trials: list[Trial] = Field(description="the plans to run, in predicted order")
    skipped: list[str] = Field(default_factory=list, description="better-ranked plans the launcher cannot run, why")


def trial_job(plan, model: ModelSpec, *, steps: int, warmup: int, backend: str) -> JobSpec:
    """The validator job running ``plan`` (a planner.search Plan) for a few steps with the profiler on;
    SpecError (the reason) when the validator cannot run it."""
    trn = plan.training
    if trn.recipe not in ("torch-amp", "fsdp", "torchtitan"):
        raise SpecError(f"recipe {trn.recipe}: the validator runs PyTorch's own APIs (torch-amp, fsdp)",
                        field="recipe")
    job = JobSpec(model=model, layout=plan.layout, seq_length=trn.seq_length, global_batch_size=trn.global_batch_size,
                  micro_batch_size=trn.micro_batch_size, recompute=trn.recompute,
                  compute_dtype="fp32" if backend == "gloo" else "bf16",
                  recipe="fsdp" if trn.recipe in ("fsdp", "torchtitan") and backend == "nccl" else "torch-amp",
                  steps=steps, warmup=warmup, backend=backend, check_numerics=False, track_memory=False,
                  count_collectives=True, trace_steps=2)
    job.check()
    return job


def choose_trials(plans: list, model: ModelSpec, k: int, **job_args) -> tuple[list[tuple[Any, JobSpec]], list[str]]:
    """The first ``k`` plans, in rank order, that the launcher can run, and why better ones were skipped."""
    chosen, skipped = [], []
    for plan in plans:
        if len(chosen) == k:
            break
        try:
            chosen.append((plan, trial_job(plan, model, **job_args)))
        except SpecError as exc:
            skipped.append(f"#{plan.rank} {plan.label}: {exc}")
    return chosen, skipped


def array_script(folder: Path, n: int, *, gpus: int, gpus_per_node: int, backend: str, timeout_s: float,
                 time_limit: str = "01:00:00", partition: str | None = None, account: str | None = None) -> str:
    """One SLURM job array, task i running trial i (``folder/job_<i>.json``) with torchrun on its nodes (sbatch
    runs a copy of the script, so the folder is written into it; PARAPLAN_TRIALS overrides it)."""
    nodes = max(1, -(-gpus // gpus_per_node))
    per_node = min(gpus, gpus_per_node)
    lines = ["#!/bin/bash", "#SBATCH --job-name=paraplan-trials", f"#SBATCH --array=0-{n - 1}", f"#SBATCH --nodes={nodes}",
             "#SBATCH --ntasks-per-node=1",
             f"#SBATCH --gpus-per-node={per_node}" if backend == "nccl" else "#SBATCH --exclusive",
             f"#SBATCH --time={time_limit}", "#SBATCH --output=paraplan-trials-%A_%a.out"]
    lines += [f"#SBATCH --partition={partition}"] if partition else []
    lines += [f"#SBATCH --account={account}"] if account else []
    lines += [
        "# Written by: paraplan plan --trials. Task i runs trial i for a few steps with the profiler on;",
        "# then: paraplan trials collect THIS_FOLDER (reads the traces, calibrates, re-ranks the plans).",
        "set -uo pipefail",
        f'TRIALS="${{PARAPLAN_TRIALS:-{shlex.quote(str(Path(folder).resolve()))}}}"',
        'K="${SLURM_ARRAY_TASK_ID:-0}"',
        'MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        "MASTER_PORT=$((29500 + K))",
        "export MASTER_ADDR MASTER_PORT",
        f'timeout {int(timeout_s) + 120} srun --nodes={nodes} --ntasks-per-node=1 --kill-on-bad-exit=1 \\',
        f"  torchrun --nnodes={nodes} --nproc-per-node={per_node} --rdzv-backend=c10d \\",
        '  --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT" --rdzv-id="paraplan-trials-${SLURM_ARRAY_JOB_ID:-0}-$K" \\',
        f'  -m validate.worker "$TRIALS/job_$K.json" "$TRIALS/job_$K" {int(timeout_s)}',
    ]
    return "\n".join(lines) + "\n"


def write_trials(folder: Path, manifest: TrialsManifest, jobs: list[JobSpec], script: str) -> None:
    """The manifest, one task per trial and the array script, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for trial, job in zip(manifest.trials, jobs):
        write_atomic(folder / f"job_{trial.index}.json", json.dumps({"kind": "train", "spec": job.model_dump(mode="json")}))
        (folder / f"job_{trial.index}").mkdir(exist_ok=True)
    write_atomic(folder / SBATCH, script)
    write_atomic(folder / MANIFEST, manifest.model_dump_json(indent=1))


def read_manifest(folder: Path) -> TrialsManifest:
    """``trials.json`` of ``folder``; SpecError naming the folder when it is missing or malformed."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise SpecError(f"{folder}: no {MANIFEST} (write one with paraplan plan ... --trials K --out DIR)",
                        field="DIR")
    try:
        return TrialsManifest.model_validate_json(path.read_text())
    except ValueError as exc:
        raise SpecError(f"{path}: not a trials manifest ({str(exc).splitlines()[0]})", field="DIR") from None


def trial_task(folder: Path, index: int) -> JobSpec:
    """The validator job of trial ``index``."""
    data = json.loads((Path(folder) / f"job_{index}.json").read_text())
    return JobSpec.model_validate(data["spec"])


def run_command(folder: Path) -> str:
    """How to run the trials: on a cluster, or here."""
    return f"sbatch {shlex.quote(str(Path(folder) / SBATCH))}   (or on this machine: paraplan trials run {folder})"


__all__ = ["Trial", "TrialsManifest", "array_script", "choose_trials", "layout_text", "read_manifest",
           "trial_job", "write_trials"]
