"""One rank of a validation job: init, reference, build, numerics step, timed steps, memory step.

The rank keeps its status file current after every phase (see results), so the launcher can name a rank
that dies or hangs and keep what the others measured. Run by the elastic launcher (``worker_main``) or
by torchrun under SLURM (``python -m validate.worker JOB.json JOB_DIR``).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from .job import JobSpec
from .memory import CPU_METHOD, CUDA_METHOD, TensorMemoryTracker
from .numerics import (
    GRAD_FLOOR,
    TOLERANCE,
    compare,
    compare_params,
    reference_step,
    relative_error,
    step_batch,
)
from .parallel import ParallelRun, make_mesh
from .parallel.context import ContextParallelRun
from .results import TRACE_DIR, NumericsResult, RankResult, rank_file, write_atomic, write_sidecar
from .tracing import trace_file, traced_steps

# Collectives wait this much longer than the job timeout, so the launcher (not gloo) decides on hangs.
PG_TIMEOUT_MARGIN_S = 60


class Status:
    """This rank's RankResult, written atomically on every update."""

    def __init__(self, job_dir: Path, rank: int):
        self.path = rank_file(job_dir, rank)
        self.result = RankResult(rank=rank, pid=os.getpid())

    def update(self, **changes) -> None:
        self.result = self.result.model_copy(update={**changes, "heartbeat_unix": time.time()})
        write_atomic(self.path, self.result.model_dump_json(indent=1))


def _inject_fault(job: JobSpec, rank: int) -> None:
    if not job.fault:
        return
    who, _, kind = job.fault.partition(":")
    if int(who) != rank:
        return
    if kind == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    while True:  # hang
        time.sleep(1)


def _numerics(job: JobSpec, run: ParallelRun, ref, loss: float | None, grads, params) -> NumericsResult:
    tol = TOLERANCE[job.compute_dtype]
    g_err, g_where = compare(grads, ref.grads, GRAD_FLOOR)
    p_err, p_where = compare_params(params, ref.params_after, ref.grads, tol)
    loss_err = relative_error(torch.tensor(loss), torch.tensor(ref.loss)) if loss is not None else None
    ok = g_err <= tol and p_err <= tol and (loss_err is None or loss_err <= tol)
    return NumericsResult(
        passed=ok, tolerance=tol, reference_loss=ref.loss if loss is not None else None, loss=loss,
        loss_error=loss_err, grad_error=g_err, grad_worst=g_where, param_error=p_err, param_worst=p_where,
        tensors_checked=len(grads),
    )


def run_rank(job: JobSpec, job_dir: Path, timeout_s: float) -> None:
    """Everything one rank does; raises on failure after recording the error in its status file."""
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    status = Status(job_dir, rank)
    status.update(phase="init")
    try:
        cuda = job.backend == "nccl"
        if cuda:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
        dist.init_process_group(job.backend, timeout=timedelta(seconds=timeout_s + PG_TIMEOUT_MARGIN_S))
        mesh = make_mesh(job.layout, device.type)
        status.update(coords={n: mesh.get_local_rank(n) for n in ("dp", "pp", "tp")}, phase="reference")
        ref = reference_step(job, device) if job.check_numerics else None
        status.update(phase="build")
        if job.layout.cp > 1:  # context parallelism: validate/parallel/context.py

            run = ContextParallelRun(job, mesh, device)
        else:
            run = ParallelRun(job, mesh, device)
        untimed = max(job.warmup, 1 if job.check_numerics else 0)
        times: list[float] = []
        losses: list[float] = []
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        for step in range(untimed + job.steps):
            status.update(phase="step", step=step)
            if step == 0:
                _inject_fault(job, rank)
            x, y = step_batch(job, step)
            status.update(phase="sync")
            dist.barrier()
            t0 = time.perf_counter()
            loss = run.forward_backward(x, y)
            if step == 0 and ref is not None:
                grads = run.full_grads()
                run.optimizer_step()
                status.update(numerics=_numerics(job, run, ref, loss, grads, run.full_params()))
            else:
                run.optimizer_step()
            if cuda:
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - t0
            if loss is not None:
                losses.append(loss)
            if step >= untimed:
                times.append(elapsed)
        calls = None
        if job.count_collectives or job.trace_steps:
            status.update(phase="collectives")
            first = untimed + job.steps

            def traced(k: int) -> None:
                x, y = step_batch(job, first + k)
                run.forward_backward(x, y)
                run.optimizer_step()

            out = trace_file(job_dir / TRACE_DIR, rank) if job.trace_steps else None
            calls = traced_steps(traced, max(job.trace_steps, 1), out, cuda)
            if out is not None and rank == 0:
                write_sidecar(job_dir / TRACE_DIR, job)
        memory, method = None, None
        if cuda:
            memory, method = float(torch.cuda.max_memory_allocated(device)), CUDA_METHOD
        elif job.track_memory:
            status.update(phase="memory")
            tracker = TensorMemoryTracker()
            x, y = step_batch(job, untimed + job.steps)
            dist.barrier()
            with tracker:
                for t in [*run.state_tensors(), x, y]:
                    tracker.track(t)
                run.forward_backward(x, y)
                run.optimizer_step()
            memory, method = float(tracker.peak_bytes), CPU_METHOD
        dist.barrier()
        status.update(phase="done", status="done", step_times_s=times, losses=losses,
                      median_step_s=statistics.median(times) if times else None,
                      peak_memory_bytes=memory, memory_method=method, collective_calls=calls)
    except BaseException as exc:
        status.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        traceback.print_exc()
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def worker_main(job_json: str, job_dir: str, timeout_s: float) -> None:
    """Elastic-launcher entry point (a module-level function, so it pickles)."""
    run_rank(JobSpec.model_validate_json(job_json), Path(job_dir), timeout_s)


def read_task(path: str) -> dict:
    """A spec file: the spec itself, or a ``{"kind": ..., "spec": ...}`` task (what ``collect`` reads)."""
    data = json.loads(Path(path).read_text())
    return data["spec"] if "kind" in data else data


if __name__ == "__main__":  # torchrun entry: python -m validate.worker JOB.json JOB_DIR [TIMEOUT_S]
    limit = float(sys.argv[3]) if len(sys.argv) > 3 else 600.0
    run_rank(JobSpec.model_validate(read_task(sys.argv[1])), Path(sys.argv[2]), limit)
