"""A ready sbatch script that runs validation jobs (and the microbenchmarks) on a SLURM cluster:
one ``srun`` task per node starts ``torchrun`` with a c10d rendezvous on the first node, and
``paraplan validate collect`` gathers every rank's file into one results JSON. Torch-free.
"""

from __future__ import annotations

import shlex

from .benchspec import BenchSpec
from .job import JobSpec

RDZV_PORT = 29500


def sbatch_script(jobs: list[JobSpec], *, nodes: int, gpus_per_node: int, bench: BenchSpec | None = None,
                  timeout_s: float = 600.0, time_limit: str = "01:00:00", partition: str | None = None,
                  account: str | None = None, results: str = "results.json") -> str:
    """The sbatch script text. Each job's JSON spec is embedded; every job gets ``timeout_s`` seconds."""
    gpus = any(j.backend == "nccl" for j in jobs) or (bench is not None and bench.backend == "nccl")
    lines = [
        "#!/bin/bash",
        "#SBATCH --job-name=paraplan-validate",
        f"#SBATCH --nodes={nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={gpus_per_node}" if gpus else "#SBATCH --exclusive",
        f"#SBATCH --time={time_limit}",
        "#SBATCH --output=paraplan-validate-%j.out",
    ]
    if partition:
        lines.append(f"#SBATCH --partition={partition}")
    if account:
        lines.append(f"#SBATCH --account={account}")
    lines += [
        "# Written by: paraplan validate slurm. Runs each layout as a real torch.distributed job, then",
        "# gathers the per-rank files into one results JSON for paraplan validate report / calibrate.",
        "set -uo pipefail",
        'WORKDIR="${PARAPLAN_WORKDIR:-$PWD/paraplan-validate-${SLURM_JOB_ID}}"',
        'mkdir -p "$WORKDIR"',
        'MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        f"MASTER_PORT={RDZV_PORT}",
        "export MASTER_ADDR MASTER_PORT",
        "",
        "run_ranks() {  # run_ranks INDEX MODULE SPEC_JSON: one torchrun per node, c10d rendezvous on node 0",
        f'  timeout {int(timeout_s) + 120} srun --nodes={nodes} --ntasks-per-node=1 --kill-on-bad-exit=1 \\',
        f"    torchrun --nnodes={nodes} --nproc-per-node={gpus_per_node} --rdzv-backend=c10d \\",
        '    --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT" --rdzv-id="paraplan-${SLURM_JOB_ID}-$1" \\',
        f'    -m "$2" "$3" "$WORKDIR/job_$1" {int(timeout_s)} || echo "paraplan: task $1 ended with status $?"',
        "}",
        "",
    ]
    tasks = [("validate.worker", j.model_dump_json()) for j in jobs]
    if bench is not None:
        tasks.append(("validate.microbench", bench.model_dump_json()))
    for k, (module, spec) in enumerate(tasks):
        kind = "bench" if module == "validate.microbench" else "train"
        lines += [
            f'mkdir -p "$WORKDIR/job_{k}"',
            f"cat > \"$WORKDIR/job_{k}.json\" <<'PARAPLAN_SPEC'",
            f'{{"kind": "{kind}", "spec": {spec}}}',
            "PARAPLAN_SPEC",
            f'run_ranks {k} {module} "$WORKDIR/job_{k}.json"',
            "",
        ]
    lines.append(f"paraplan validate collect \"$WORKDIR\" --timeout {int(timeout_s)} --out {shlex.quote(results)}")
    return "\n".join(lines) + "\n"
