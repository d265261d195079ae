"""Run validation jobs from the caller's process without importing torch: start the supervisor,
watch its progress files, enforce an overall deadline, and collect one ``ResultsFile``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from planner.errors import SpecError
from planner.work.params import parameter_counts

from .benchspec import BenchSpec
from .job import JobSpec
from .results import (
    SIDECAR,
    TRACE_DIR,
    BenchResult,
    JobResult,
    RankResult,
    ResultsFile,
    assemble,
    read_ranks,
    write_sidecar,
)

# Start-up allowance on top of the per-job timeouts (torch import in the supervisor and forkserver), s.
STARTUP_ALLOWANCE_S = 90.0


def require_torch() -> None:
    """SpecError with the install hint when torch is missing."""
    if importlib.util.find_spec("torch") is None:
        raise SpecError("validate needs PyTorch: pip install 'paraplan[validate]'", field="torch")


GIB = 2**30
# Host bytes per parameter one local rank needs at least: the full fp32 model every rank builds before
# sharding it (4), plus, with the numerics check on a CPU, the single-process reference's fp32 weights,
# gradients and two Adam moments (16). Activations come on top, so this is a lower bound.
BUILD_BYTES_PER_PARAM = 4
REFERENCE_BYTES_PER_PARAM = 16


def available_host_bytes() -> float | None:
    """MemAvailable of /proc/meminfo, bytes (None where the platform does not say)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def require_host_memory(jobs: list[JobSpec], available: float | None = None) -> None:
    """SpecError naming ``--model`` when a job's ranks cannot fit in this host's memory (lower bound)."""
    available = available_host_bytes() if available is None else available
    if available is None:
        return
    for job in jobs:
        per_param = BUILD_BYTES_PER_PARAM + (REFERENCE_BYTES_PER_PARAM if job.check_numerics and
                                             job.backend == "gloo" else 0)
        params = parameter_counts(job.effective_model()).total
        need = job.nproc * per_param * params
        if need > available:
            raise SpecError(
                f"{job.model.name}: {params / 1e9:.2f} B parameters x {per_param} bytes x {job.nproc} ranks = "
                f"{need / GIB:.1f} GiB at least on this host, {available / GIB:.1f} GiB available; use a smaller "
                "model (--layers/--hidden) or run it on GPUs (--backend nccl, or validate slurm)", field="--model")


def require_gpus(nprocs: list[int]) -> None:
    """SpecError naming ``--backend`` when an NCCL/RCCL run wants more local GPUs than torch sees."""
    if not nprocs:
        return
    import torch

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if have < max(nprocs):
        raise SpecError(f"nccl needs {max(nprocs)} GPU(s) on this machine; torch {torch.__version__} sees {have} here "
                        "(allowed: gloo for CPU runs)", field="--backend")


def run_jobs(
    jobs: list[JobSpec], *, timeout_s: float = 120.0, workdir: str | Path | None = None,
    bench: BenchSpec | None = None, on_progress: Callable[[int, list[RankResult]], None] | None = None,
    keep_traces: str | Path | None = None,
) -> ResultsFile:
    """Run ``jobs`` one after another (each ``job.nproc`` local ranks), then the microbenchmarks
    ``bench`` if given, and return their results. With ``keep_traces``, each job's trace folder is copied
    there (``job_<k>/trace``, self-describing: calibrate --trace reads it) and the results point at it.

    A job that exceeds ``timeout_s`` or loses a rank ends with ``partial=True`` and a one-line ``error``
    naming the rank; the other jobs still run.
    """
    require_torch()
    for job in jobs:
        job.check()
    require_gpus([j.nproc for j in jobs if j.backend == "nccl"] + ([bench.nproc] if bench and bench.backend == "nccl" else []))
    require_host_memory(jobs)
    tasks = [{"kind": "train", "spec": j.model_dump(mode="json")} for j in jobs]
    nprocs = [j.nproc for j in jobs]
    if bench is not None:
        tasks.append({"kind": "bench", "spec": bench.model_dump(mode="json")})
        nprocs.append(bench.nproc)
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="paraplan-validate-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        results = _supervise(tasks, nprocs, jobs, bench, root, timeout_s, on_progress)
        if keep_traces is not None:
            return keep_job_traces(results, root, Path(keep_traces))
        if workdir is None:  # the traces go with the work folder
            results = results.model_copy(update={"jobs": [j.model_copy(update={"trace_dir": None})
                                                          for j in results.jobs]})
        return results
    finally:
        if workdir is None:  # nothing left behind: the per-rank files live in the results
            shutil.rmtree(root, ignore_errors=True)


def _supervise(tasks: list[dict], nprocs: list[int], jobs: list[JobSpec], bench: BenchSpec | None, root: Path,
               timeout_s: float, on_progress: Callable[[int, list[RankResult]], None] | None) -> ResultsFile:
    """Start the supervisor on ``tasks`` in ``root``, watch it until it ends or the overall deadline, and
    read the results; its process group is killed on the way out (an interrupt or SIGTERM/SIGHUP too)."""
    jobs_file = root / "jobs.json"
    jobs_file.write_text(json.dumps(tasks))
    log = open(root / "supervisor.log", "w")
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "validate.supervisor", str(jobs_file), str(root), str(timeout_s)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
    )
    deadline = time.time() + STARTUP_ALLOWANCE_S + len(tasks) * (timeout_s + 30.0)
    killed = False
    try:
        while proc.poll() is None:
            if time.time() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            if on_progress is not None:
                current = _current_job(root, len(tasks))
                on_progress(current, read_ranks(root / f"job_{current}", nprocs[current]))
            time.sleep(0.25)
        proc.wait()
    finally:
        log.close()
        _kill_group(proc)
    why = "supervisor killed at the overall deadline" if killed else f"supervisor exited ({proc.returncode})"
    log_text = (root / "supervisor.log").read_text(errors="replace").strip()
    tail = [line for line in log_text.splitlines() if line.startswith("supervisor failed:")][-1:] or (
        log_text.splitlines()[-1:] or [""])
    failure = f"{why}: {tail[0]}"[:300]
    results = []
    for k, job in enumerate(jobs):
        path = root / f"job_{k}" / "result.json"
        if path.exists():
            results.append(JobResult.model_validate_json(path.read_text()))
        else:
            results.append(assemble(job, read_ranks(root / f"job_{k}", job.nproc), error=failure,
                                    wall_s=0.0, started=0.0, job_dir=root / f"job_{k}"))
    bench_result = None
    if bench is not None:
        path = root / f"job_{len(jobs)}" / "result.json"
        bench_result = (BenchResult.model_validate_json(path.read_text()) if path.exists()
                        else BenchResult(spec=bench, partial=True, error=failure))
    return ResultsFile(jobs=results, microbench=bench_result)


def keep_job_traces(results: ResultsFile, root: Path, keep: Path) -> ResultsFile:
    """Copy every job's trace folder from the work folder ``root`` to ``keep/job_<k>/trace``, its description
    completed with the job's untraced step times (the slowest rank's), and point the results at the copies."""
    jobs = []
    for k, job in enumerate(results.jobs):
        src = root / f"job_{k}" / TRACE_DIR
        if job.trace_dir is None or not (src / SIDECAR).exists():
            jobs.append(job)
            continue
        dst = keep / f"job_{k}" / TRACE_DIR
        shutil.copytree(src, dst, dirs_exist_ok=True)
        timed = [r for r in job.ranks if r.step_times_s]
        slowest = max(timed, key=lambda r: r.median_step_s or 0.0) if timed else None
        write_sidecar(dst, job.job, slowest.step_times_s if slowest else None)
        jobs.append(job.model_copy(update={"trace_dir": str(dst.resolve())}))
    return results.model_copy(update={"jobs": jobs})


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the supervisor's process group (the supervisor, its forkserver and every rank: they share
    the session it started) and reap the supervisor; a group already gone is fine."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process stuck in the kernel
        pass


def _current_job(root: Path, n: int) -> int:
    done = [k for k in range(n) if (root / f"job_{k}" / "result.json").exists()]
    return min(len(done), n - 1)
