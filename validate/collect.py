"""Gather a work folder of per-rank files (from a SLURM run, or a kept ``--workdir``) into one
``ResultsFile``. Torch-free."""

from __future__ import annotations

import re
from pathlib import Path

from planner.errors import SpecError
from planner.io import read_json

from .benchspec import BenchSpec
from .job import JobSpec
from .results import BenchResult, JobResult, ResultsFile, assemble, describe_hang, read_ranks


def collect(workdir: str | Path, timeout_s: float) -> ResultsFile:
    """Every ``job_<k>.json`` task of ``workdir`` folded with its ranks' files (partial when a rank is
    missing, failed or stopped early; the error names it)."""
    root = Path(workdir)
    if not root.is_dir():
        raise SpecError("not a folder (give the work folder of validate run --workdir or of a SLURM run)",
                        source=str(root))
    specs = sorted((p for p in root.glob("job_*.json") if re.fullmatch(r"job_\d+\.json", p.name)),
                   key=lambda p: int(p.stem.split("_")[1]))
    if not specs:
        raise SpecError("no job_<k>.json task files found", source=str(root))
    jobs: list[JobResult] = []
    bench = None
    for path in specs:
        task = read_json(path, "task file")
        if not isinstance(task, dict) or task.get("kind") not in ("train", "bench") or not isinstance(
                task.get("spec"), dict):
            raise SpecError("not a validate task file (expected \"kind\": train or bench and a \"spec\")",
                            source=str(path))
        job_dir = root / path.stem
        if task["kind"] == "bench":
            spec = BenchSpec.model_validate(task["spec"])
            data = [read_json(p, "microbenchmark file") for p in sorted(job_dir.glob("bench_rank_*.json"))]
            ranks = read_ranks(job_dir, len(data) or 1)
            bench = BenchResult(spec=spec, ranks=data, partial=not data, status=ranks,
                                error=None if data else "no rank wrote microbenchmarks")
            continue
        job = JobSpec.model_validate(task["spec"])
        ranks = read_ranks(job_dir, job.nproc)
        failed = [r for r in ranks if r.status == "failed"]
        error = None
        if failed:
            r = failed[0]
            error = f"rank {r.rank} failed in phase '{r.phase}' of step {r.step}: {(r.error or '').strip()[:200]}"
        elif any(r.status != "done" for r in ranks):
            error = describe_hang(ranks, timeout_s)
        started = min((r.heartbeat_unix for r in ranks if r.heartbeat_unix), default=0.0)
        jobs.append(assemble(job, ranks, error=error, wall_s=0.0, started=started, job_dir=job_dir))
    return ResultsFile(jobs=jobs, microbench=bench)
