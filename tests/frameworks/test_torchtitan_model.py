"""torchtitan builds each exported zoo model (its llama3 module, on meta tensors, torchtitan 0.3.0) and the
parameter count equals the plan's; models its llama3 module cannot build are refused with the reason."""

from __future__ import annotations

import pytest
from fw_harness import run_checker, write_exports
from fw_zoo import zoo_scenarios

from planner.errors import SpecError
from planner.work.params import parameter_counts

pytestmark = pytest.mark.frameworks
CASES = [(f"zoo-{sc.model.name}", sc) for sc in zoo_scenarios()]


@pytest.fixture(scope="module")
def results(site, tmp_path_factory):
    folder = tmp_path_factory.mktemp("torchtitan-model")
    exports = write_exports("torchtitan", CASES, folder)
    spec = [{"dir": str(d)} for n, _ in CASES if not isinstance(d := exports[n], SpecError)]
    return exports, run_checker(site, "fw_torchtitan.py", spec, folder)


@pytest.mark.parametrize("name,scenario", CASES, ids=[n for n, _ in CASES])
def test_torchtitan_builds_the_planned_model_or_says_why_not(name, scenario, results):
    exports, checked = results
    got = exports[name]
    if isinstance(got, SpecError):
        assert "[torchtitan/models/llama3" in str(got)
        return
    r = checked[str(got)]
    assert r["ok"], r["error"]
    assert r["params"] == parameter_counts(scenario.model).total
    assert r["layers"] == scenario.model.num_layers


def test_llama_models_are_built_not_refused(results):
    exports, _ = results
    for name in ("zoo-llama3.1-405b", "zoo-llama3-8b", "zoo-llama2-7b"):
        assert not isinstance(exports[name], SpecError), exports[name]
