"""`plan --framework X` that finds nothing names the framework rules that removed the layouts, with
their counts and source lines (issue 25), as `estimate --framework X` does for one layout."""

from __future__ import annotations


def test_deepspeed_fp8_plan_names_the_rule_and_its_source(run_cli):
    r = run_cli("plan", "--model", "llama3-8b", "--hardware", "h100-sxm-80gb", "--gpus", "8",
                "--global-batch", "64", "--framework", "deepspeed", "--precision", "fp8")
    assert r.exit_code != 0
    text = " ".join((r.stdout + r.stderr).split())
    assert "--framework deepspeed refuses them" in text
    assert "precision removed" in text and "fp8: the DeepSpeed config has fp16 and bf16 modes only" in text
    assert "[deepspeed/runtime/config.py" in text


def test_the_error_details_count_each_rule():
    import pytest

    from hwprofiles import load_hardware, load_model
    from planner.errors import InfeasibleError
    from planner.search import SearchConstraints, search
    from planner.specs import TrainingSpec

    training = TrainingSpec(global_batch_size=64, precision="fp8", recipe="deepspeed")
    with pytest.raises(InfeasibleError) as exc:
        search(load_model("llama3-8b"), load_hardware("h100-sxm-80gb"), 8, training,
               SearchConstraints(framework="deepspeed"))
    rejected = exc.value.details["rejected"]
    rules = rejected["framework"]
    assert rules["precision"][0] > 0 and rules["precision"][1].startswith("deepspeed/runtime/config.py")
    assert sum(n for n, _, _ in rules.values()) == rejected["constraint"]  # every cut here is DeepSpeed's
