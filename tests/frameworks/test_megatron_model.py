"""Megatron-Core builds each exported model (GPTModel on meta tensors, megatron-core 0.19.2) and its
parameter count equals the plan's: total and active within 0.1 %, for every zoo model Megatron runs
(dense, GQA, MoE, MLA: DeepSeek-V3 671.0 B / 37.6 B, Qwen3-30B-A3B, Mixtral, gpt-oss-120b, Llama 3.1
405B, ...) and every fixed plan of the frameworks group."""

from __future__ import annotations

import pytest
from fw_harness import run_checker, write_exports
from fw_plans import plans
from fw_zoo import zoo_scenarios

from planner.errors import SpecError
from planner.work.params import parameter_counts

pytestmark = pytest.mark.frameworks
CASES = [(f"zoo-{sc.model.name}", sc) for sc in zoo_scenarios()] + [(p.name, p.scenario) for p in plans()]
REL = 1e-3


@pytest.fixture(scope="module")
def results(site, tmp_path_factory):
    folder = tmp_path_factory.mktemp("megatron-model")
    exports = write_exports("megatron", CASES, folder)
    spec = [{"dir": str(d), "world_size": sc.gpus} for n, sc in CASES
            if not isinstance(d := exports[n], SpecError)]
    return exports, run_checker(site, "fw_megatron_model.py", spec, folder)


@pytest.mark.parametrize("name,scenario", CASES, ids=[n for n, _ in CASES])
def test_megatron_builds_the_planned_model(name, scenario, results):
    exports, checked = results
    got = exports[name]
    if isinstance(got, SpecError):
        assert "[megatron/" in str(got)  # refused with Megatron's reason and source
        return
    r = checked[str(got)]
    assert r["ok"], r["error"]
    plan = parameter_counts(scenario.model)
    assert r["total"] == pytest.approx(plan.total, rel=REL)
    assert r["active"] == pytest.approx(plan.active, rel=REL)
    assert r["layers"] == scenario.model.num_layers and r["moe_layers"] == scenario.model.moe_layers


def test_deepseek_v3_counts_671b_total_37_6b_active(results):
    exports, checked = results
    r = checked[str(exports["zoo-deepseek-v3"])]
    assert round(r["total"] / 1e9, 1) == 671.0 and round(r["active"] / 1e9, 1) == 37.6
