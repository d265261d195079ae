"""Framework recipes (hwprofiles/recipes/*.yaml): loading, aliases, sources, and the ops they decide."""

from __future__ import annotations

import pytest

from hwprofiles.recipe_loader import canonical_recipe_name, list_recipes, load_recipe, recipe_from_dict
from planner.errors import SpecError
from planner.specs import Layout, ModelSpec, TrainingSpec
from planner.specs.recipe import RECIPE_NAMES
from planner.work.layer import layer_forward
from planner.work.memory import state_bytes_per_param

GPT = ModelSpec(name="g", num_layers=2, hidden_size=64, num_heads=4, ffn_hidden_size=256, vocab_size=128)


def test_every_recipe_loads_with_a_source_per_rule():
    assert sorted(list_recipes()) == sorted(RECIPE_NAMES)
    for name in RECIPE_NAMES:
        r = load_recipe(name)
        assert r.name == name and r.sources


def test_old_recipe_values_map_to_the_new_recipes():
    assert canonical_recipe_name("megatron") == "megatron-lm"
    assert canonical_recipe_name("fsdp") == "torchtitan"
    assert TrainingSpec(global_batch_size=1, recipe="fsdp").recipe == "torchtitan"
    assert TrainingSpec(global_batch_size=1).recipe == "megatron-lm"


def test_unknown_recipe_names_the_allowed_values():
    with pytest.raises(SpecError, match="megatron-core"):
        canonical_recipe_name("megatron-x")


def test_a_rule_without_source_is_refused():
    data = load_recipe("torch-amp").model_dump()
    data["sources"] = {k: v for k, v in data["sources"].items() if k != "autocast"}
    with pytest.raises(SpecError, match="autocast"):
        recipe_from_dict(data, "x.yaml")


def test_unset_fields_take_the_recipe_defaults():
    assert TrainingSpec(global_batch_size=1, recipe="torch-amp").dropout is False
    assert TrainingSpec(global_batch_size=1, recipe="megatron-lm").dropout is True
    core = TrainingSpec(global_batch_size=1, recipe="megatron-core")
    assert core.tp_comm_overlap and core.distributed_optimizer and core.overlap_param_gather
    assert TrainingSpec(global_batch_size=1, recipe="megatron-core", dropout=False).dropout is False


def test_state_bytes_come_from_the_recipe():
    per = state_bytes_per_param(TrainingSpec(global_batch_size=1, recipe="deepspeed"))
    assert (per.weights, per.grads, per.optimizer) == (2, 2, 12)
    per = state_bytes_per_param(TrainingSpec(global_batch_size=1, recipe="torch-amp"))
    assert (per.weights, per.grads, per.optimizer) == (4, 4, 8)


def test_autocast_casts_every_linear_weight_each_forward():
    tr = TrainingSpec(global_batch_size=1, seq_length=16, recipe="torch-amp")
    ops = {op.name: op for op in layer_forward(GPT, tr, Layout())}
    linear = 12 * 64 * 64 + (3 * 64 + 64 + 256 + 64)  # 4 matrices + 4 biases of a GPT layer
    assert ops["weight_cast"].bytes_moved == linear * 6  # read fp32, write bf16
    assert ops["weight_cast"].launches == 8
    fused = {op.name for op in layer_forward(GPT, tr.replace(recipe="megatron-lm"), Layout())}
    assert "weight_cast" not in fused and "norm1.cast" not in fused


def test_fp8_speedup_follows_the_measured_size_curve():
    from hwprofiles import load_hardware
    from planner.pricing.compute import ComputePricer
    from planner.work.ops import Gemm

    dev = load_hardware("h200-sxm-141gb").device
    bf16, fp8 = ComputePricer(dev, "bf16"), ComputePricer(dev, "fp8")

    def ratio(n):
        g = Gemm("x", n, n, n, "fwd")
        return bf16.gemm_time(g) / fp8.gemm_time(g)

    assert ratio(1024) == pytest.approx(1.0)  # below the smallest measured fp8 shape: no gain
    assert 1.3 < ratio(4096) < 1.7  # microbenchmark 995 / 685 TFLOP/s
    assert 1.8 < ratio(8192) < 2.2  # 1395 / 679


def test_fp8_adds_transformer_engine_cast_transpose_traffic_and_saves_fp8_inputs():
    from planner.work.memory import layer_activation_bytes

    tr = TrainingSpec(global_batch_size=1, seq_length=16, recipe="megatron-core")
    ops8 = [op.name for op in layer_forward(GPT, tr.replace(precision="fp8"), Layout())]
    assert "fc1.fp8_cast" in ops8 and "qkv.fp8_cast" in ops8
    assert "fc1.fp8_cast" not in [op.name for op in layer_forward(GPT, tr, Layout())]
    saved16 = layer_activation_bytes(GPT, tr, Layout())
    saved8 = layer_activation_bytes(GPT, tr.replace(precision="fp8"), Layout())
    assert saved16 - saved8 == 16 * (2 * 64 + 64 + 256)  # four Linear inputs at 1 B instead of 2


def test_gradients_of_later_micro_batches_are_accumulated_unless_fused_into_the_gemm():
    from planner.work.step import build_step

    tr = TrainingSpec(global_batch_size=4, micro_batch_size=1, seq_length=16, recipe="torch-amp")
    layer = build_step(GPT, tr, Layout()).stages[0].layer
    [acc] = [op for op in layer.backward_weight if op.name == "grad_accumulate"]
    linear_and_norms = 12 * 64 * 64 + (3 * 64 + 64 + 256 + 64) + 4 * 64
    assert acc.bytes_moved == pytest.approx(3 * 4 * linear_and_norms * 3 / 4)  # fp32 .grad, 3 of 4 micro-batches
    megatron = TrainingSpec(global_batch_size=4, micro_batch_size=1, seq_length=16, recipe="megatron-lm")
    fused = build_step(GPT, megatron, Layout()).stages[0].layer
    assert not [op for op in fused.backward_weight if op.name == "grad_accumulate"]
    # Megatron-LM before its fused wgrad accumulation (2022-02): a separate add per micro-batch into main_grad
    unfused = build_step(GPT, megatron.replace(grad_accumulation_fusion=False), Layout()).stages[0].layer
    [acc] = [op for op in unfused.backward_weight if op.name == "grad_accumulate"]
    assert acc.bytes_moved == pytest.approx(3 * 4 * linear_and_norms * 3 / 4)  # fp32 main_grad under bf16


def test_fp16_keeps_16_bit_gradients_and_the_optimizer_copies_them_to_fp32():
    """Megatron: --fp16 keeps fp16 main_grad (reduced in fp16) unless fp32 accumulation is asked; --bf16 forces
    fp32. The fp16 optimizer's fp32 copy of the gradients is held at the optimizer step."""
    from planner.cost.peaks import breakdown_at
    from planner.work.memory import grad_reduce_bytes_per_param, optimizer_grad_copy_bytes_per_param
    from planner.work.step import build_step

    for recipe in ("megatron-lm", "megatron-core"):
        fp16 = TrainingSpec(global_batch_size=4, seq_length=16, recipe=recipe, precision="fp16")
        bf16 = fp16.replace(precision="bf16")
        assert (state_bytes_per_param(fp16).grads, grad_reduce_bytes_per_param(fp16)) == (2, 2)
        assert (state_bytes_per_param(bf16).grads, grad_reduce_bytes_per_param(bf16)) == (4, 4)
        assert (optimizer_grad_copy_bytes_per_param(fp16), optimizer_grad_copy_bytes_per_param(bf16)) == (4, 0)
    ds = TrainingSpec(global_batch_size=4, seq_length=16, recipe="deepspeed", precision="fp16")
    assert (state_bytes_per_param(ds).grads, optimizer_grad_copy_bytes_per_param(ds)) == (2, 0)
    trn = TrainingSpec(global_batch_size=4, seq_length=16, recipe="megatron-lm", precision="fp16")
    stage = build_step(GPT, trn, Layout()).stages[0]
    assert stage.optimizer_grad_copy_bytes == pytest.approx(4 * stage.optimizer_params)
    at_step = breakdown_at(stage, "optimizer-step", 0.0)
    assert at_step.grads == pytest.approx(stage.grads_bytes + 4 * stage.optimizer_params)


def test_megatron_lm_and_deepspeed_reduce_gradients_after_the_backward():
    """Megatron-LM's --DDP-impl local all-reduces in train_step after the backward; DeepSpeed overlaps only ZeRO-3
    (overlap_comm) and its pipeline engine reduces after the schedule; Megatron-Core overlaps."""
    overlap = {r: TrainingSpec(global_batch_size=4, recipe=r).overlap_dp_comm
               for r in ("megatron-lm", "deepspeed", "megatron-core")}
    assert overlap == {"megatron-lm": False, "deepspeed": False, "megatron-core": True}
