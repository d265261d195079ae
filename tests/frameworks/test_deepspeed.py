"""DeepSpeed's own DeepSpeedConfig (deepspeed 0.19.8) on the fixed plans' ds_config.json exports."""

from __future__ import annotations

import pytest
from fw_harness import run_checker, write_exports
from fw_plans import _sc, plans

from planner.errors import SpecError
from planner.frameworks import refusal
from planner.specs import Layout, micro_batches_per_step

pytestmark = pytest.mark.frameworks


@pytest.fixture(scope="module")
def results(site, tmp_path_factory):
    folder = tmp_path_factory.mktemp("deepspeed")
    exports = write_exports("deepspeed", plans(), folder)
    spec = [{"dir": str(d), "dp": p.scenario.layout.dp, "pp": p.scenario.layout.pp}
            for p in plans() if not isinstance(d := exports[p.name], SpecError)]
    return exports, run_checker(site, "fw_deepspeed.py", spec, folder)


@pytest.mark.parametrize("plan", plans(), ids=lambda p: p.name)
def test_deepspeed_accepts_or_paraplan_refuses(plan, results):
    exports, checked = results
    got = exports[plan.name]
    if plan.deepspeed is not None:
        assert isinstance(got, SpecError) and plan.deepspeed in str(got), got
        assert "[deepspeed/" in str(got)
        return
    assert not isinstance(got, SpecError), str(got)
    r = checked[str(got)]
    assert r["ok"], r["error"]
    lay, trn = plan.scenario.layout, plan.scenario.training
    assert r["world_size"] == lay.dp
    assert (r["train_batch_size"], r["micro"], r["accumulation"]) == (
        trn.global_batch_size, trn.micro_batch_size, micro_batches_per_step(lay, trn))
    assert r["zero_stage"] == lay.effective_zero_stage
    assert (r["bf16"], r["fp16"]) == (trn.precision == "bf16", trn.precision == "fp16")
    off = trn.offload  # ZeRO-Offload / ZeRO-Infinity / CPU checkpointing, as DeepSpeed parsed them
    assert r["offload_optimizer"] == ("cpu" if off.optimizer else None) and r["zero_cpu_offload"] == off.optimizer
    assert r["offload_param"] == ("cpu" if off.params else None)
    assert r["cpu_checkpointing"] == off.activations
    launch = (got / "launch.sh").read_text()  # the header names what the model code must carry
    assert f"tensor parallel {lay.tp}, pipeline stages {lay.pp}" in launch
    assert f"activation recompute {trn.recompute}" in launch


def test_zero2_with_pipeline_is_refused_with_deepspeeds_reason():
    """DeepSpeed's pipeline engine refuses ZeRO >= 2 (runtime/pipe/engine.py:76-77), ZeRO-1 it runs."""
    sc = _sc("llama3-8b", "h100-sxm-80gb", Layout(tp=2, pp=2, dp=2, zero_stage=2), global_batch_size=16)
    reason = refusal("deepspeed", sc.model, sc.training, sc.layout)
    assert "ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism" in reason
    assert refusal("deepspeed", sc.model, sc.training, sc.layout.replace(zero_stage=1)) is None
