"""The sbatch script of ``paraplan validate slurm`` run end to end on this machine: ``srun`` and
``scontrol`` replaced by one-node stand-ins, gloo instead of NCCL (``--backend gloo``, what a CPU
cluster uses). Checks torchrun's c10d rendezvous, the per-rank files and the final collect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.validate

SRUN = '#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n'  # drop srun's options, run once
SCONTROL = "#!/bin/bash\necho localhost\n"


def test_sbatch_script_runs_on_one_node_and_gathers_results(run_cli, tmp_path):
    script = tmp_path / "validate.sbatch"
    res = run_cli("validate", "slurm", "--nodes", "1", "--gpus-per-node", "2", "--backend", "gloo", "--layout", "tp=2",
                  "--layers", "2", "--hidden", "64", "--heads", "4", "--vocab", "256", "--seq", "64", "--steps", "2",
                  "--dtype", "fp32", "--no-bench", "--timeout", "120", "--out", script)
    assert res.exit_code == 0, res.stderr
    text = script.read_text()
    assert "--gpus-per-node" not in text and "#SBATCH --exclusive" in text
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, body in (("srun", SRUN), ("scontrol", SCONTROL)):
        (shims / name).write_text(body)
        (shims / name).chmod(0o755)
    env = dict(os.environ, SLURM_JOB_ID="4242", SLURM_JOB_NODELIST="localhost",
               PATH=os.pathsep.join([str(shims), str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    run = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    [job] = results["jobs"]
    assert job["layout"] == "tp=2,pp=1,dp=1" and not job["partial"] and job["numerics_passed"] is True
    assert sorted(r["rank"] for r in job["ranks"]) == [0, 1] and job["step_time_s"] > 0
