"""torchtitan's own config manager (torchtitan 0.3.0) on the fixed plans' config modules: parsed and
validated, the model built on the meta device, the pipeline stages mapped to ranks by torchtitan."""

from __future__ import annotations

import pytest
from fw_harness import run_checker, write_exports
from fw_plans import plans

from planner.errors import SpecError
from planner.specs import micro_batches_per_step, stage_layer_counts
from planner.work.params import parameter_counts

pytestmark = pytest.mark.frameworks


@pytest.fixture(scope="module")
def results(site, tmp_path_factory):
    folder = tmp_path_factory.mktemp("torchtitan")
    exports = write_exports("torchtitan", plans(), folder)
    spec = [{"dir": str(d)} for p in plans() if not isinstance(d := exports[p.name], SpecError)]
    return exports, run_checker(site, "fw_torchtitan.py", spec, folder)


@pytest.mark.parametrize("plan", plans(), ids=lambda p: p.name)
def test_torchtitan_accepts_or_paraplan_refuses(plan, results):
    exports, checked = results
    got = exports[plan.name]
    if plan.torchtitan is not None:
        assert isinstance(got, SpecError) and plan.torchtitan in str(got), got
        assert "[tor" in str(got)  # cites torchtitan's (or torch's pipelining) source
        return
    assert not isinstance(got, SpecError), str(got)
    r = checked[str(got)]
    assert r["ok"], r["error"]
    lay, trn, model = plan.scenario.layout, plan.scenario.training, plan.scenario.model
    assert r["params"] == parameter_counts(model).total  # torchtitan's own model, built on meta tensors
    par, tr = r["parallelism"], r["training"]
    assert par["data_parallel_replicate_degree"] * par["data_parallel_shard_degree"] == lay.dp
    assert par["data_parallel_shard_degree"] == (lay.dp if lay.effective_zero_stage == 3 else 1)
    assert (par["tensor_parallel_degree"], par["pipeline_parallel_degree"], par["context_parallel_degree"]) == \
        (lay.tp, lay.pp, lay.cp)
    assert par["enable_sequence_parallel"] == lay.sequence_parallel
    assert tr["enable_cpu_offload"] == trn.offload.params  # FSDP2 CPUOffloadPolicy: params, grads, optimizer
    assert tr["seq_len"] == trn.seq_length and tr["global_batch_size"] == trn.global_batch_size
    m = micro_batches_per_step(lay, trn)
    if lay.pp == 1:  # one micro-batch per local batch; torchtitan accumulates global / (local * dp)
        assert tr["local_batch_size"] == trn.micro_batch_size
        assert tr["global_batch_size"] // (tr["local_batch_size"] * lay.dp) == m
    else:  # the local batch is split into pipeline micro-batches
        assert tr["local_batch_size"] // par["pipeline_parallel_microbatch_size"] == m
        assert par["pipeline_parallel_microbatch_size"] == trn.micro_batch_size
        fqns = r["fqns"]
        assert [n for part in fqns for n in part] == r["all_modules_in_order"]
        assert len(fqns) == lay.pp * lay.vpp
        held = [sum(n.startswith("layers.") for s in stages for n in fqns[s]) for stages in r["stage_of_rank"]]
        assert held == stage_layer_counts(lay, model)  # torchtitan's rank -> stage mapping gives the plan's split
    assert r["ac"] == {"none": None, "op": "SelectiveAC.Config", "full": "FullAC.Config"}[trn.recompute]
    assert (r["float8_linears"] > 0) == (trn.precision == "fp8")
