"""Published-run rows take their framework recipe from the framework column (planner/bench/rows.py)."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware
from planner.bench.accuracy import default_csv
from planner.bench.rows import build_case, read_rows, row_recipe

ROWS = {r["row_id"]: r for r in read_rows(default_csv())}


def case(row_id: str, **changes):
    return build_case(dict(ROWS[row_id], **changes), (), load_hardware, lambda s: True)


@pytest.mark.parametrize(("framework", "fsdp", "recipe"), [
    ("Megatron-Core r0.8.0", False, "megatron-core"), ("NeMo 2.0", False, "megatron-core"),
    ("Megatron-LM (2021)", False, "megatron-lm"), ("Megatron-DeepSpeed (3D)", False, "deepspeed"),
    ("GPT-NeoX (Megatron-DeepSpeed based)", False, "deepspeed"), ("torchtitan", True, "torchtitan"),
    ("Composer + LLM Foundry (PyTorch FSDP)", True, "llm-foundry"), ("some trainer", True, "fsdp1"),
])
def test_recipe_from_the_framework_column(framework, fsdp, recipe):
    assert row_recipe(framework, fsdp) == recipe


def test_megatron_core_rows_default_to_sequence_parallel_and_tp_overlap():
    sc = case("92", notes="", sequence_parallel="").scenario  # tp 2, nothing stated
    assert sc.training.recipe == "megatron-core"
    assert sc.layout.sequence_parallel and sc.training.tp_comm_overlap and sc.training.distributed_optimizer


def test_deepspeed_rows_do_not_interleave():
    c = case("36")  # Megatron-DeepSpeed, pp 35, vpp unstated
    assert c.scenario.training.recipe == "deepspeed" and c.scenario.layout.vpp == 1


@pytest.mark.parametrize("cell", ["no", "no (DDP + fused Adam)", "none"])
def test_zero_cell_no_means_plain_data_parallel(cell):
    c = case("17", zero_or_fsdp=cell)
    assert c.scenario.layout.zero_stage == 0 and not c.scenario.layout.fsdp
    assert "zero_or_fsdp" not in c.defaults_used


def test_megatron_lm_2021_rows_accumulate_gradients_unfused():
    """Megatron-LM added its fused wgrad accumulation on 2022-02-13 (commit 83b1e42f): Narayanan 2021 rows
    (Megatron-LM 2021, PTD-P) add each micro-batch's gradients separately, Korthikanti 2022 rows do not."""
    for row_id in ("7", "19"):  # narayanan2021_t1, narayanan2021_t2 (PTD-P)
        c = case(row_id)
        assert c.scenario.training.grad_accumulation_fusion is False and "grad_accumulation_unfused" in c.flags
    c = case("25")  # korthikanti2022
    assert c.scenario.training.grad_accumulation_fusion is True and "grad_accumulation_unfused" not in c.flags
