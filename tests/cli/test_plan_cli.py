"""``paraplan plan``: table and JSON output, exports written atomically, exit codes 1 and 2."""

from __future__ import annotations

import json

SMALL = ["--model", "gpt3-1.3b", "--hardware", "a100-sxm-80gb", "--gpus", "8", "--global-batch", "32",
         "--max-tp", "2", "--micro-batch", "1"]


def test_plan_renders_table_breakdown_and_reasons(run_cli):
    r = run_cli("plan", *SMALL, "--top", "3")
    assert r.exit_code == 0, r.stderr
    assert "feasible plans" in r.stdout and "Best plan" in r.stdout
    assert "Step time breakdown" in r.stdout and "runner-up" in r.stdout
    assert "rejected" in r.stdout


def test_plan_json_schema(run_cli):
    r = run_cli("plan", *SMALL, "--top", "3", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data["plans"]) <= 3 and data["plans"][0] == data["best"]
    assert set(data["stats"]["rejected"]) == {"memory", "invalid", "constraint", "dominated"}
    assert data["best"]["estimate"]["fits"] is True
    assert data["layouts_per_s"] > 0


def test_export_json_round_trips_through_estimate(run_cli, tmp_path):
    out = tmp_path / "best.json"
    r = run_cli("plan", *SMALL, "--json", "--export", "json", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    best = json.loads(r.stdout)["best"]["estimate"]
    e = run_cli("estimate", "--layout", str(out), "--json")
    assert e.exit_code == 0, e.stderr
    again = json.loads(e.stdout)
    assert again["step_time_s"] == best["step_time_s"]
    assert again["peak_memory_bytes"] == best["peak_memory_bytes"]


def test_export_megatron_prints_arguments(run_cli):
    r = run_cli("plan", *SMALL, "--export", "megatron")
    assert r.exit_code == 0, r.stderr
    assert "--tensor-model-parallel-size" in r.stdout and "--micro-batch-size 1" in r.stdout


def test_reference_row(run_cli):
    r = run_cli("plan", *SMALL, "--reference", "tp=1,pp=2,zero=0,micro-batch=1,recompute=full", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["reference"]["layout"]["pp"] == 2
    assert data["best"]["estimate"]["step_time_s"] <= data["reference"]["estimate"]["step_time_s"]


def test_bad_constraints_exit_2(run_cli):
    base = ["plan", "--model", "frontier-175b", "--hardware", "mi250x-frontier", "--global-batch", "640"]
    for extra, needle in ((["--gpus", "1024", "--max-tp", "3"], "--max-tp"), (["--gpus", "0"], "--gpus"),
                          (["--gpus", "64", "--memory-headroom", "1.5"], "--memory-headroom"),
                          (["--gpus", "64", "--objective", "speed"], "--objective"),
                          (["--gpus", "64", "--export", "nemo"], "--export")):
        r = run_cli(*base, *extra)
        assert r.exit_code == 2, (extra, r.stdout, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_infeasible_exits_1_with_a_way_out(run_cli):
    r = run_cli("plan", "--model", "gpt3-13b", "--hardware", "a100-sxm-40gb", "--gpus", "1", "--global-batch", "8")
    assert r.exit_code == 1
    assert "short by" in r.stderr and "GPUs" in r.stderr and "offloading" in r.stderr


def test_refine_without_simulator_exit_2(run_cli, monkeypatch):
    from planner.search import resimulate

    monkeypatch.setattr(resimulate, "simulator_available", lambda: None)
    r = run_cli("plan", *SMALL, "--refine", "3")
    assert r.exit_code == 2 and "not available" in r.stderr


def test_ranked_table_never_cuts_a_number_at_80_or_140_columns(run_cli, monkeypatch):
    """COLUMNS=80 cut every number of the table to '14…'; now the layout column wraps (or is left
    out, said in the caption) and every figure of every plan is printed whole."""
    from planner.cli.app import console
    from planner.cli.render import fmt_seconds
    from planner.specs import Layout

    args = ["--model", "llama3-70b", "--hardware", "h100-sxm-80gb", "--gpus", "64", "--global-batch", "128",
            "--top", "5"]
    plans = json.loads(run_cli("plan", *args, "--json").stdout)["plans"]
    for width in (80, 140):
        monkeypatch.setattr(console, "width", width)
        r = run_cli("plan", *args)
        assert r.exit_code == 0, r.stderr
        table = r.stdout.split("searched")[0]
        assert "…" not in table, table
        assert max(len(line) for line in table.splitlines()) <= width
        for p in plans:
            e = p["estimate"]
            for figure in (fmt_seconds(e["step_time_s"]), f"{e['tokens_per_s']:,.0f}", f"{e['mfu']:.1%}"):
                assert figure in table, (width, figure)
        if width == 140:  # wide enough for every column, each layout on one line
            assert "recomp" in table and "left out" not in table
            for p in plans:
                assert Layout.model_validate(p["layout"]).describe() in table
        else:  # 80: the layout column wraps (recompute is left out first, and says so)
            assert "layout" in table and "left out at 80 columns: recomp" in table
