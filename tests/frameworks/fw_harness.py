"""Helpers of the frameworks test group: write exports, run a checker in the framework environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from planner.errors import SpecError
from planner.exports import export_files

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def write_exports(fmt: str, plans, folder: Path) -> dict[str, Path | SpecError]:
    """Each plan's export files in folder/<plan>, or the SpecError with which paraplan refused it; a plan
    is a FrameworkPlan (``.name``, ``.scenario``) or a (name, scenario) pair."""
    out: dict[str, Path | SpecError] = {}
    for plan in plans:
        name, scenario = plan if isinstance(plan, tuple) else (plan.name, plan.scenario)
        try:
            files = export_files(fmt, scenario)
        except SpecError as exc:
            out[name] = exc
            continue
        d = folder / name
        d.mkdir(parents=True)
        for file_name, text in files.items():
            (d / file_name).write_text(text)
        out[name] = d
    return out


def run_checker(site: Path, script: str, spec: list[dict], folder: Path) -> dict:
    """Run tests/frameworks/<script> in the framework environment on ``spec``; its JSON results."""
    spec_path, out_path = folder / f"{script}.spec.json", folder / f"{script}.out.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(HERE / script), str(spec_path), str(out_path)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out_path.read_text())
