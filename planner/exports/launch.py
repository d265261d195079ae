"""Launch scripts beside an exported config: the environment and a ``srun`` + ``torchrun`` line
for the plan's node count (one torchrun per node, c10d rendezvous on the first node)."""

from __future__ import annotations

from ..scenario import Scenario

RDZV_PORT = 29500


def nodes_of(scenario: Scenario) -> tuple[int, int]:
    """(nodes, ranks per node) of the plan."""
    per_node = min(scenario.hardware.node.devices_per_node, scenario.gpus)
    return -(-scenario.gpus // per_node), per_node


def torchrun_line(scenario: Scenario, program: str) -> str:
    """``srun ... torchrun ... PROGRAM`` for the plan's nodes (under SLURM; plain torchrun on one node)."""
    nodes, per_node = nodes_of(scenario)
    torchrun = (f"torchrun --nnodes {nodes} --nproc-per-node {per_node} --rdzv-backend c10d "
                f"--rdzv-endpoint \"$MASTER_ADDR:{RDZV_PORT}\" --rdzv-id \"${{SLURM_JOB_ID:-paraplan}}\" {program}")
    if nodes == 1:
        return torchrun
    return f"srun --nodes {nodes} --ntasks-per-node 1 --kill-on-bad-exit=1 \\\n  {torchrun}"


def script(scenario: Scenario, header: str, sources: list[str], program: str, user_vars: dict[str, str],
           extra_env: dict[str, str] | None = None) -> str:
    """A runnable bash script: sources the args file(s), sets the environment, launches."""
    nodes, per_node = nodes_of(scenario)
    lines = ["#!/usr/bin/env bash", f"# {header}",
             f"# {nodes} node(s) x {per_node} GPU(s); submit with sbatch --nodes {nodes} or run under salloc.",
             "set -euo pipefail", 'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"']
    lines += [f'source "$HERE/{s}"' for s in sources]
    lines.append('MASTER_ADDR="${MASTER_ADDR:-$(scontrol show hostnames "${SLURM_JOB_NODELIST:-localhost}" '
                 '2>/dev/null | head -n 1 || echo localhost)}"')
    lines.append("export MASTER_ADDR")
    lines += [f"export {k}={v}" for k, v in (extra_env or {}).items()]
    lines.append("# not planned by paraplan (data, tokenizer, optimiser schedule): edit to taste")
    lines += [f'{k}="${{{k}:-{v}}}"' for k, v in user_vars.items()]
    lines.append(torchrun_line(scenario, program))
    return "\n".join(lines) + "\n"
