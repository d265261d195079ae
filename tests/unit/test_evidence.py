"""planner.evidence: the layout class of a prediction and what the shipped table says about it."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware
from planner.evidence import LayoutClass, classify, evidence_for_class, hardware_family, scale_band
from planner.evidence.table import EvidenceRow, EvidenceTable
from planner.pricing.compute import attention_generation
from planner.specs import Layout, TrainingSpec


@pytest.mark.parametrize("profile, family", [("h100-sxm-80gb", "H100"), ("a100-sxm-40gb", "A100"),
                                             ("a100-sxm-80gb", "A100"), ("mi250x-frontier", "MI250X"),
                                             ("h200-sxm-141gb", "H200"), ("cpu-host", "cpu-host")])
def test_hardware_family_from_the_device_name(profile, family):
    assert hardware_family(load_hardware(profile)) == family


def test_scale_bands():
    assert [scale_band(g) for g in (1, 2, 8, 9, 64, 65, 512, 513, 4096, 4097)] == [
        "1", "2-8", "2-8", "9-64", "9-64", "65-512", "65-512", "513-4096", "513-4096", "4097+"]


def test_class_of_a_layout():
    hw = load_hardware("h100-sxm-80gb")
    core = TrainingSpec(global_batch_size=512, recipe="megatron-core")  # distributed optimizer by default
    lm = TrainingSpec(global_batch_size=512, recipe="megatron-lm", recompute="full")
    c = classify(hw, core, Layout(tp=8, dp=32), 256, attention="default")
    assert (c.tp, c.pp, c.cp, c.ep, c.sharded_dp, c.scale) == (True, False, False, False, "states", "65-512")
    assert classify(hw, lm, Layout(tp=8, dp=32), 256, attention="default").sharded_dp == "none"
    assert classify(hw, lm, Layout(dp=256, zero_stage=3), 256, attention="default").sharded_dp == "params"
    assert classify(hw, lm, Layout(tp=8, zero_stage=3), 8, attention="default").sharded_dp == "none"  # one dp rank
    assert (classify(hw, lm, Layout(pp=4, cp=2, dp=32), 256, attention="default").describe()
            == "megatron-lm H100 pp+cp rc:full bf16 65-512 GPUs")
    assert (classify(hw, lm, Layout(dp=256, zero_stage=3), 256, attention="fa1-triton").describe()
            == "megatron-lm H100 zero3/fsdp rc:full bf16 fa1-triton 65-512 GPUs")


def test_the_attention_generation_a_class_names():
    """The kernel a prediction prices: a cell-named or recipe table, the profile's default, or unfused."""
    h100, a100 = load_hardware("h100-sxm-80gb").device, load_hardware("a100-sxm-80gb").device
    fsdp1 = TrainingSpec(global_batch_size=64, recipe="fsdp1")  # its release dispatches to FlashAttention-2
    assert attention_generation(h100, fsdp1) == "fa2"
    assert attention_generation(h100, fsdp1.model_copy(update={"attention_kernel": "fa1-triton"})) == "fa1-triton"
    core = TrainingSpec(global_batch_size=64, recipe="megatron-core")  # cuDNN attention: the profile's table
    assert attention_generation(h100, core) == "default"
    assert attention_generation(a100, core.model_copy(update={"flash_attention": False})) == "unfused"


def test_a_plan_of_another_attention_kernel_is_only_near_the_class():
    ev = evidence_for_class(_cls(attention="fa1-triton"), 0.44, TABLE)
    assert ev.rows == 0 and ev.nearest_rows == 3 and ev.nearest_differs == ["attention"]


def _cls(**changes) -> LayoutClass:
    base = dict(recipe="megatron-core", hardware="H100", tp=True, pp=False, cp=False, ep=False, sharded_dp="states",
                recompute="none", precision="bf16", scale="65-512")
    return LayoutClass(**{**base, **changes})


def _row(i: int, cls: LayoutClass, error: float, mfu: float) -> EvidenceRow:
    return EvidenceRow(file="runs.csv", row=str(i), source="s", model="m", gpus=128, layout="-", layout_class=cls,
                       error_pct=error, predicted_mfu=mfu * (1 + error / 100), measured_mfu=mfu)


TABLE = EvidenceTable(kind="paraplan-evidence", version=1, generated_by="test", files=["runs.csv"], rows=[
    _row(1, _cls(), 10.0, 0.40), _row(2, _cls(), -2.0, 0.45), _row(3, _cls(), 4.0, 0.42),
    _row(4, _cls(scale="9-64"), 20.0, 0.50), _row(5, _cls(recipe="megatron-lm", precision="fp8"), 1.0, 0.70)])


def test_rows_of_the_class_and_their_median_error():
    ev = evidence_for_class(_cls(), 0.44, TABLE)
    assert ev.rows == 3 and ev.median_error_pct == 4.0 and ev.median_abs_error_pct == 4.0
    assert ev.refs == ["runs.csv#1", "runs.csv#2", "runs.csv#3"] and ev.nearest_rows == 0
    assert ev.summary().startswith("3 measured runs of this class, median error +4.0%")


def test_no_run_of_the_class_names_the_nearest_and_what_differs():
    ev = evidence_for_class(_cls(cp=True), 0.44, TABLE)
    assert ev.rows == 0 and ev.nearest_rows == 3 and ev.nearest_differs == ["cp"]
    assert "no measured run of this class" in ev.summary() and "differing in cp" in ev.summary()
    ev = evidence_for_class(_cls(scale="513-4096", cp=True), 0.44, TABLE)  # scale differs from all: cheapest
    assert ev.nearest_differs == ["scale", "cp"] and ev.nearest_rows == 4  # row 4 too: another scale, no cp


def test_above_the_best_measured_mfu_of_recipe_hardware_precision():
    ev = evidence_for_class(_cls(), 0.51, TABLE)  # best megatron-core H100 bf16 is 0.50 (row 4, another scale)
    assert ev.above_best_measured and ev.best_measured_mfu == 0.50 and ev.best_measured_ref == "runs.csv#4"
    assert ev.ceiling_scope == "megatron-core on H100 in bf16" and "above the best measured MFU" in ev.ceiling_note()
    assert not evidence_for_class(_cls(), 0.50, TABLE).above_best_measured
    ev = evidence_for_class(_cls(recipe="deepspeed"), 0.51, TABLE)  # no deepspeed run: any recipe on H100 bf16
    assert ev.ceiling_scope == "H100 in bf16 (any recipe)" and ev.above_best_measured
    ev = evidence_for_class(_cls(hardware="MI300X"), 0.9, TABLE)
    assert ev.best_measured_mfu is None and not ev.above_best_measured and ev.ceiling_note() is None


def test_a_release_without_runs_is_bounded_by_its_recipe_familys_runs():
    """torchtitan-0.3 has no measured run; torchtitan (base: torchtitan-0.3) does, and those bound it before any
    other recipe's (megatron-core's 0.50 here)."""
    table = TABLE.model_copy(update={"rows": [*TABLE.rows, _row(6, _cls(recipe="torchtitan"), 5.0, 0.39)]})
    ev = evidence_for_class(_cls(recipe="torchtitan-0.3"), 0.45, table)
    assert ev.ceiling_scope == "torchtitan-0.3's family (torchtitan) on H100 in bf16" and ev.best_measured_mfu == 0.39
    assert ev.above_best_measured and ev.best_measured_ref == "runs.csv#6"
    assert not evidence_for_class(_cls(recipe="torchtitan-0.3"), 0.38, table).above_best_measured
