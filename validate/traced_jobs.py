"""Traced jobs from folders: the validator's own (its job description written next to the traces) or a
user's (the scenario given on the command line). Reading the traces needs HTA (planner.trace.read).

A validator job folder holds ``trace/`` (one ``rank_<r>.pt.trace.json.gz`` per rank and ``paraplan_job.json``)
next to the ranks' status files, whose median untraced step times give the job's step time (the slowest
rank's median, as validate.results.assemble takes it).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from planner.errors import SpecError
from planner.specs import Layout, ModelSpec, TrainingSpec
from planner.trace.measure import measure
from planner.trace.read import read_traces
from planner.trace.run import traced_run

from .job import JobSpec, layout_text
from .results import SIDECAR, SIDECAR_KIND, RankResult
from .trace_fit import TracedJob, read_sidecar


def untraced_times(folder: Path, sidecar: dict) -> list[float] | None:
    """The slowest rank's untraced step times: from the sidecar, else the ranks' status files one level up."""
    if sidecar.get("untraced_step_times_s"):
        return list(sidecar["untraced_step_times_s"])
    ranks = []
    for path in sorted(Path(folder).parent.glob("rank_*.json")):
        try:
            ranks.append(RankResult.model_validate_json(path.read_text()))
        except (OSError, ValueError):
            continue
    timed = [r for r in ranks if r.step_times_s]
    if not timed:
        return None
    return max(timed, key=lambda r: statistics.median(r.step_times_s)).step_times_s


def _traced(folder: Path, name: str, model: ModelSpec, training: TrainingSpec, layout: Layout,
            times: list[float] | None) -> TracedJob:
    ranks = read_traces(folder)
    if len(ranks) > layout.gpus:
        raise SpecError(f"{folder}: {len(ranks)} rank traces for a layout of {layout.gpus} ranks ({name})",
                        field="trace")
    on_gpu = any(r.on_gpu for r in ranks)
    untraced = statistics.median(times) if times else None
    run = traced_run([measure(r) for r in ranks], on_gpu, untraced)
    notes = [] if len(ranks) == layout.gpus else [
        f"{len(ranks)} of {layout.gpus} ranks traced (ranks {', '.join(str(r.rank) for r in ranks)}): the others "
        "are taken to do the same"]
    return TracedJob(name=name, model=model, training=training, layout=layout, run=run, folder=str(folder),
                     untraced_step_s=untraced, untraced_range_s=(min(times), max(times)) if times else None,
                     backend=ranks[0].backend, notes=notes)


def load_validator_job(folder: str | Path) -> TracedJob:
    """A validator job's traces; SpecError when the folder has no job description (a user's trace needs
    --model and --layout)."""
    folder = Path(folder)
    if folder.is_dir() and (folder / "trace").is_dir() and not (folder / SIDECAR).exists():
        folder = folder / "trace"  # a job folder of validate run --workdir
    sidecar = read_sidecar(folder) if folder.is_dir() else None
    if sidecar is None or sidecar.get("kind") != SIDECAR_KIND:
        raise SpecError(f"{folder}: no {SIDECAR} (the validator writes it); for your own job's traces give "
                        "--model and --layout", field="trace")
    try:
        job = JobSpec.model_validate(sidecar["job"])
    except (ValueError, KeyError) as exc:
        raise SpecError(f"{folder / SIDECAR}: not a job description ({str(exc).splitlines()[0]})",
                        field="trace") from None
    return _traced(folder, layout_text(job.layout), job.effective_model(), job.training_spec(), job.layout,
                   untraced_times(folder, sidecar))


def load_user_job(folder: str | Path, model: ModelSpec, training: TrainingSpec, layout: Layout) -> TracedJob:
    """A user's traces of ``model`` run under ``layout`` with ``training`` (step time from the traced steps)."""
    return _traced(Path(folder), layout_text(layout), model, training, layout, None)
