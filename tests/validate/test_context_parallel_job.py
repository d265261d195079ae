"""A real 2-rank gloo context-parallel job (validate/parallel/context.py): ring attention with
send/recv and the all-gather variant, GQA and full recompute, against the single-process reference;
the collective calls measured on rank 0 equal the ones the cost model prices (planner/work/context.py)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.validate


@pytest.fixture(scope="module")
def report(tmp_path_factory, validate_run):
    return validate_run(tmp_path_factory.mktemp("validate_cp") / "results.json", "--layout", "cp=2",
                        "--layout", "cp=2,cp_kind=allgather", "--kv-heads", "2", "--recompute", "full",
                        "--steps", "1", "--warmup", "1")


def test_cp_jobs_pass_numerics(report):
    jobs = json.loads(report.read_text())["jobs"]
    assert [j["layout"] for j in jobs] == ["tp=1,pp=1,dp=1,cp=2,cp_kind=ring", "tp=1,pp=1,dp=1,cp=2,cp_kind=allgather"]
    for job in jobs:
        assert job["numerics_passed"] is True and not job["partial"], job["layout"]
        for r in job["ranks"]:
            n = r["numerics"]
            assert n["grad_error"] <= n["tolerance"] and n["param_error"] <= n["tolerance"]
            assert n["loss_error"] is not None and n["loss_error"] <= 1e-4


def test_cp_collectives_measured_equal_priced(report, run_cli):
    res = run_cli("validate", "report", "--results", report, "--json")
    assert res.exit_code == 0, res.stderr
    rows = {r["layout"]: r for r in json.loads(res.stdout)["rows"]}
    ring = rows["tp=1,pp=1,dp=1,cp=2,cp_kind=ring"]
    # 4 layers x 4 micro-batches x (1 forward + 1 recomputed forward + 2 backward) sends; one all-reduce
    assert ring["measured_calls"] == ring["predicted_calls"] == {"all-reduce": 1, "recv": 64, "send": 64}
    gather = rows["tp=1,pp=1,dp=1,cp=2,cp_kind=allgather"]
    assert gather["measured_calls"] == gather["predicted_calls"] == {"all-gather": 32, "all-reduce": 1,
                                                                     "reduce-scatter": 16}
