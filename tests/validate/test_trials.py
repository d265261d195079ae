"""``plan --trials K --out DIR``, ``trials run DIR`` and ``trials collect DIR`` end to end on this machine (the
validator's own jobs launch the plans), and the job array script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("hta")

pytestmark = pytest.mark.validate

TINY = str(Path(__file__).resolve().parent.parent / "data" / "models" / "tiny-gpt.yaml")


def test_trials_run_and_are_re_ranked_by_measured_steps(run_cli, tmp_path):
    folder = tmp_path / "trials"
    res = run_cli("plan", "--model", TINY, "--hardware", "cpu-host", "--gpus", "2", "--global-batch", "8", "--seq", "64",
                  "--recipe", "torch-amp", "--trials", "2", "--out", folder)
    assert res.exit_code == 0, res.stderr
    manifest = json.loads((folder / "trials.json").read_text())
    assert [t["plan_rank"] for t in manifest["trials"]] == [1, 2]
    script = (folder / "trials.sbatch").read_text()
    assert "#SBATCH --array=0-1" in script and "-m validate.worker" in script and str(folder.resolve()) in script
    res = run_cli("trials", "run", folder, "--timeout", "120")
    assert res.exit_code == 0, res.stderr
    res = run_cli("trials", "collect", folder, "--json")
    assert res.exit_code == 0, res.stderr
    rep = json.loads(res.stdout)
    rows = rep["rows"]
    assert sorted(r["measured_rank"] for r in rows) == [1, 2]
    assert rows[0]["measured_s"] <= rows[1]["measured_s"]  # listed fastest first
    for r in rows:
        expected = 100 * (r["predicted_plan_s"] - r["measured_s"]) / r["measured_s"]
        assert r["error_plan_pct"] == pytest.approx(expected)
        assert r["predicted_loo_s"] > 0  # predicted by an overlay fitted on the other trial
    assert Path(rep["overlay"]).exists()
    from hwprofiles import load_hardware

    assert load_hardware("cpu-host", calibration=rep["overlay"]).name == "cpu-host"


def test_trials_collect_before_any_run_is_exit_2(run_cli, tmp_path):
    folder = tmp_path / "trials"
    assert run_cli("plan", "--model", TINY, "--hardware", "cpu-host", "--gpus", "2", "--global-batch", "8", "--seq",
                   "64", "--recipe", "torch-amp", "--trials", "1", "--out", folder).exit_code == 0
    res = run_cli("trials", "collect", folder)
    assert res.exit_code == 2 and "no trial has run yet" in res.stderr


def test_trials_need_an_out_folder(run_cli):
    res = run_cli("plan", "--model", TINY, "--hardware", "cpu-host", "--gpus", "2", "--global-batch", "8", "--trials", "2")
    assert res.exit_code == 2 and "--trials" in res.stderr
