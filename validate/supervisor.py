"""Runs validation jobs one after another with torch's elastic launcher; enforces each job's timeout.

Started by ``validate.launch`` as its own process (``python -m validate.supervisor TASKS.json WORKDIR
TIMEOUT_S``) so a job can be torn down without touching the caller. Workers start from a forkserver
that imports torch once, so a job's start-up does not pay one torch import per rank.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import torch
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from .benchspec import BenchSpec
from .job import JobSpec
from .microbench import bench_main
from .results import BenchResult, JobResult, RankResult, assemble, describe_hang, read_ranks, write_atomic
from .worker import worker_main


def free_port() -> int:
    """An unused local TCP port for the rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Errors a rank raises because a peer went away: such a rank is a victim, not the cause.
PEER_LOST = ("connection closed by peer", "connection reset", "remote worker", "broken pipe", "timed out")
POLL_S = 0.05


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


class ExitWatch:
    """Notes when each rank's process exits (polled every POLL_S), to tell the rank that died first
    from the ones the launcher stopped afterwards."""

    def __init__(self, job_dir: Path, nproc: int):
        self.job_dir, self.nproc = job_dir, nproc
        self.pids: dict[int, int] = {}
        self.exited: dict[int, float] = {}

    def poll(self) -> None:
        if len(self.pids) < self.nproc:
            self.pids = {r.rank: r.pid for r in read_ranks(self.job_dir, self.nproc) if r.pid}
        now = time.time()
        for rank, pid in self.pids.items():
            if rank not in self.exited and not _alive(pid):
                self.exited[rank] = now


def describe_failure(failures: dict, ranks: list[RankResult], exited: dict[int, float]) -> tuple[int, str]:
    """(rank, one line) naming the rank that caused the failure, how, and where. The cause is a rank that
    raised an error of its own, else the first rank seen to exit without reporting an error (killed or
    crashed), else a rank that never reported an error (on a loaded machine the exit watch may not run
    between a rank's death and the launcher's report), else the launcher's first failure; ranks that
    only lost a peer are victims."""
    by_rank = {r.rank: r for r in ranks}

    def own_error(r: RankResult) -> bool:
        return r.status == "failed" and not any(p in (r.error or "").lower() for p in PEER_LOST)

    raised = sorted((r for r in ranks if own_error(r)), key=lambda r: r.heartbeat_unix)
    silent = sorted((rk for rk in exited if by_rank.get(rk) and by_rank[rk].status == "running"),
                    key=lambda rk: exited[rk])
    unreported = sorted((rk for rk in failures if not (by_rank.get(rk) and by_rank[rk].status == "failed")),
                        key=lambda rk: failures[rk].timestamp)
    if raised:
        rank = raised[0].rank
    elif silent:
        rank = silent[0]
    elif unreported:
        rank = unreported[0]
    else:
        rank = min(failures, key=lambda rk: failures[rk].timestamp)
    status, failure = by_rank.get(rank), failures.get(rank)
    if failure is not None and failure.exitcode is not None and failure.exitcode < 0:
        how = f"killed by signal {failure.signal_name()}"
        if failure.signal_name() == "SIGKILL":
            how += "; out of host memory is the usual cause"
    elif status is not None and status.error:
        how = " ".join(line.strip() for line in status.error.splitlines() if line.strip())[:200]
    elif failure is not None:
        how = f"exit code {failure.exitcode}"
    else:
        how = "exited without reporting an error: killed or crashed"
    where = ""
    if status is not None:
        where = f" in phase '{status.phase}'" + (f" of step {status.step}" if status.step >= 0 else "")
    return rank, f"rank {rank} died ({how}){where}"


def _kill_ranks(job_dir: Path, nproc: int) -> None:
    for r in read_ranks(job_dir, nproc):
        if r.pid and r.status not in ("done",):
            try:
                os.kill(r.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def launch(entry, payload: str, nproc: int, job_dir: Path, timeout_s: float) -> tuple[list[RankResult], str | None]:
    """Run ``entry(payload, job_dir, timeout_s)`` on ``nproc`` local ranks with the elastic launcher; wait
    at most ``timeout_s``. Returns every rank's last status and one line naming a dead or hung rank."""
    job_dir.mkdir(parents=True, exist_ok=True)
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"paraplan-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d", rdzv_endpoint=f"127.0.0.1:{free_port()}", max_restarts=0, monitor_interval=0.1,
        start_method="forkserver", logs_specs=DefaultLogsSpecs(log_dir=str(job_dir / "logs"), redirects=Std.ALL),
    )
    finished = threading.Event()
    timed_out = threading.Event()

    watch = ExitWatch(job_dir, nproc)
    deadline = time.time() + timeout_s

    def watchdog() -> None:
        while not finished.wait(POLL_S):
            watch.poll()
            if time.time() > deadline:
                timed_out.set()
                _kill_ranks(job_dir, nproc)
                return

    threading.Thread(target=watchdog, daemon=True).start()
    error = None
    failures: dict = {}
    try:
        elastic_launch(config, entry)(payload, str(job_dir), timeout_s)
    except ChildFailedError as exc:
        failures = exc.failures
    except Exception as exc:  # rendezvous or agent failure
        error = f"launcher failed: {type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        finished.set()
    ranks = read_ranks(job_dir, nproc)
    if timed_out.is_set():
        error = describe_hang(ranks, timeout_s)
        low = min((r.progress() for r in ranks if r.status != "done"), default=None)
        ranks = [r if r.status == "done" else r.model_copy(update={"status": "hung" if r.progress() == low
                                                                   else "killed"}) for r in ranks]
    elif failures:
        culprit, error = describe_failure(failures, ranks, watch.exited)
        ranks = [r if r.status in ("done", "failed") else r.model_copy(
            update={"status": "failed" if r.rank == culprit else "killed"}) for r in ranks]
    return ranks, error


def run_job(job: JobSpec, job_dir: Path, timeout_s: float) -> JobResult:
    """One training job: launch, then fold the ranks' files into a JobResult."""
    started = time.time()
    ranks, error = launch(worker_main, job.model_dump_json(), job.nproc, job_dir, timeout_s)
    device = torch.cuda.get_device_name(0) if job.backend == "nccl" and torch.cuda.is_available() else "cpu"
    return assemble(job, ranks, error=error, wall_s=time.time() - started, started=started,
                    device=device, torch_version=torch.__version__, job_dir=job_dir)


def run_bench(spec: BenchSpec, job_dir: Path, timeout_s: float) -> BenchResult:
    """The microbenchmark job: launch, then collect every rank's measurements."""
    ranks, error = launch(bench_main, spec.model_dump_json(), spec.nproc, job_dir, timeout_s)
    data = []
    for r in range(spec.nproc):
        path = job_dir / f"bench_rank_{r}.json"
        if path.exists():
            data.append(json.loads(path.read_text()))
    return BenchResult(spec=spec, partial=error is not None or len(data) != spec.nproc, error=error,
                       ranks=data, status=ranks)


def main(argv: list[str]) -> int:
    """``TASKS.json WORKDIR TIMEOUT_S``: run each task (train job or microbenchmarks), write
    WORKDIR/job_<k>/result.json."""
    tasks = json.loads(Path(argv[0]).read_text())
    workdir, timeout_s = Path(argv[1]), float(argv[2])
    multiprocessing.set_forkserver_preload(["validate.worker", "validate.microbench"])
    for k, task in enumerate(tasks):
        job_dir = workdir / f"job_{k}"
        write_atomic(workdir / f"job_{k}.json", json.dumps(task))  # what validate.collect reads
        if task["kind"] == "bench":
            result = run_bench(BenchSpec.model_validate(task["spec"]), job_dir, timeout_s)
        else:
            result = run_job(JobSpec.model_validate(task["spec"]), job_dir, timeout_s)
        write_atomic(job_dir / "result.json", result.model_dump_json(indent=1))
    return 0


def guarded_main(argv: list[str]) -> int:
    """``main`` behind the validator's error boundary: an exception that escapes is written to the log
    with its traceback, then as one last line ``supervisor failed: Type: message`` (the line
    validate.launch shows the user), exit code 3; an interrupt is one ``interrupted`` line, 130."""
    import traceback

    try:
        return main(argv)
    except KeyboardInterrupt:
        _log_line("supervisor interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: everything becomes one line
        traceback.print_exc(file=sys.stdout)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _log_line(f"supervisor failed: {type(exc).__name__}{': ' + text if text else ''}")
        return 3


def _log_line(line: str) -> None:
    """One line to the supervisor's log: its stdout, which validate.launch redirects to the job log
    file and reads back (the user sees it through the CLI, never from here)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(guarded_main(sys.argv[1:]))
