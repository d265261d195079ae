"""Sharded data parallelism as each framework runs it (issue 22): the mechanisms by their own numbers.

Each expectation is computed by hand from the cited source of the mechanism (see the docstrings of
planner/work/fsdp.py, planner/work/sac.py, planner/pricing/compute.py), not read back from paraplan."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware, load_model
from hwprofiles.recipe_loader import load_recipe
from planner.cost import estimate
from planner.errors import SpecError
from planner.frameworks import refusal
from planner.pricing.compute import clock_at_power, power_clock_scale
from planner.search.space import SearchConstraints, recompute_options
from planner.specs import Layout, TrainingSpec
from planner.work.kernels import loss_peak_bytes

H100_500W = "h100-sxm-96gb-500w"
L8B = "llama3.1-8b"


def _estimate(model=L8B, hw=H100_500W, layout=None, **trn):
    layout = layout or Layout(tp=1, pp=1, dp=8, zero_stage=3)
    training = TrainingSpec(**{"global_batch_size": 16, "seq_length": 8192, "recipe": "torchtitan", **trn})
    hw = load_hardware(hw) if isinstance(hw, str) else hw
    return estimate(load_model(model), hw, training, layout, layout.gpus, breakdown=True)


def test_the_500w_clock_is_read_between_the_datasheet_points():
    dev = load_hardware(H100_500W).device
    # NVIDIA H100 datasheet: 400 W (NVL) 1545 MHz, 700 W (SXM) 1830 MHz; 500 W lies a third of the way
    assert clock_at_power(dev, 500) == pytest.approx(1545 + (1830 - 1545) / 3)
    # a training run holds the clock its limit sustains, against the curves' short-run clock (1980 MHz)
    assert power_clock_scale(dev) == pytest.approx(1980 / 1640)
    assert power_clock_scale(dev.model_copy(update={"power_limit_w": 700.0})) == pytest.approx(1980 / 1830)
    short = dev.model_copy(update={"sustained_clock": False})  # a benchmark of a few timed runs
    assert power_clock_scale(short) == pytest.approx(1830 / 1640)
    assert power_clock_scale(short.model_copy(update={"power_limit_w": 700.0})) == pytest.approx(1.0)


def test_a_power_limit_slows_compute_bound_kernels_only():
    slow, full = _estimate(), _estimate(hw=load_hardware(H100_500W).model_copy(update={"device": load_hardware(
        H100_500W).device.model_copy(update={"power_limit_w": 700.0})}))
    gemm = {c.kind: c.seconds for c in slow.ops.classes}["gemm"] / {c.kind: c.seconds for c in full.ops.classes}["gemm"]
    assert gemm == pytest.approx(1830 / 1640, rel=1e-3)
    add = {c.kind: c.seconds for c in slow.ops.classes}["add"] / {c.kind: c.seconds for c in full.ops.classes}["add"]
    assert add == pytest.approx(1.0)


def test_op_sac_keeps_q_v_w1_w2_attention_and_the_block_input():
    """torchtitan _save_list: every other mm (q, v, w1, w2 of wq wk wv wo w1 w3 w2), SDPA out + logsumexp;
    plus the block's input (bf16): per token (4096 + 1024 + 14336 + 4096 + 4096 + 4096) x 2 + 32 x 4 bytes."""
    est = _estimate(micro_batch_size=2, recompute="op")
    per_token = (4096 + 1024 + 14336 + 4096 + 4096 + 4096) * 2 + 32 * 4
    assert est.mechanisms.checkpointing.saved_bytes_per_layer == pytest.approx(per_token * 2 * 8192)


def test_fsdp2_gathers_per_micro_batch_follow_torchtitans_reshard_policy():
    """32 blocks + the root unit: forward 33 gathers; backward again for 31 blocks (the last one is not
    resharded after forward) and the root: 32; reduce-scatters: 32 blocks + root."""
    sdp = _estimate(micro_batch_size=2, recompute="op").mechanisms.sharded_data_parallel
    assert (sdp.mode, sdp.reshard_after_forward) == ("per-micro-batch", "all-but-last")
    assert (sdp.gathers_per_microbatch, sdp.reduce_scatters_per_microbatch) == (65, 33)


def test_with_pipelining_fsdp2_gathers_once_per_step_and_holds_unsharded_gradients():
    est = _estimate(layout=Layout(tp=1, pp=2, dp=4, zero_stage=3), micro_batch_size=1, recompute="full")
    sdp = est.mechanisms.sharded_data_parallel
    assert sdp.mode == "kept-unsharded" and sdp.gathers_per_microbatch == 0 and sdp.gathers_per_step > 0
    m = load_model(L8B)
    first_stage = 16 * (4096 * (4096 + 2 * 1024 + 4096) + 3 * 4096 * 14336 + 2 * 4096) + m.vocab_size * 4096
    assert sdp.unsharded_grad_bytes == pytest.approx(4 * first_stage, rel=1e-3)  # fp32 reduce dtype


def test_fsdp2_stream_pools_hold_the_sharded_gradients_and_two_gathers():
    """Reduce-scatter outputs (fp32 sharded gradients) in their stream's pool: 4 B x params / 8; the
    all-gather pool: the root unit (embedding + output, 2 x 128256 x 4096, + final norm) with a block, bf16."""
    m = load_model(L8B)
    sdp = _estimate(micro_batch_size=2, recompute="op").mechanisms.sharded_data_parallel
    from planner.work.params import parameter_counts

    total = parameter_counts(m).total
    assert sdp.grads_pool_bytes == pytest.approx(4 * total / 8, rel=1e-3)
    root = 2 * m.vocab_size * m.hidden_size + m.hidden_size
    layer = (total - root) / m.num_layers
    assert sdp.all_gather_pool_bytes == pytest.approx(2 * (root + layer), rel=1e-3)


def test_the_pools_are_reserved_not_allocated():
    est = _estimate(micro_batch_size=2, recompute="op")
    worst = est.worst_stage
    sdp = est.mechanisms.sharded_data_parallel
    reserve = load_hardware(H100_500W).device.reserved_memory_gib * 2**30
    assert worst.peak_bytes - worst.allocated_bytes == pytest.approx(
        reserve + sdp.all_gather_pool_bytes + sdp.grads_pool_bytes + est.mechanisms.loss_cache_bytes)
    off = _estimate(micro_batch_size=2, recompute="op", recipe="fsdp1")  # FSDP1: no per-stream pools priced
    assert off.worst_stage.peak_bytes - off.worst_stage.allocated_bytes == pytest.approx(reserve)


def test_loss_parallel_holds_16_bytes_per_local_logit():
    tt, mc = load_recipe("torchtitan"), load_recipe("megatron-core")
    assert loss_peak_bytes(10, 100, tt, vocab_parallel=True) == 16.0 * 1000
    assert loss_peak_bytes(10, 100, tt, vocab_parallel=False) == 12.0 * 1000
    assert loss_peak_bytes(10, 100, mc, vocab_parallel=True) == loss_peak_bytes(10, 100, mc)
    est = _estimate(layout=Layout(tp=2, dp=4, zero_stage=3, sequence_parallel=True), recompute="op")
    assert est.mechanisms.loss == "loss-parallel-dtensor"


def test_the_freed_logits_stay_reserved_at_the_loss():
    """torchtitan frees the bf16 logits (del pred) before loss.backward(); each fp32 tensor of the loss backward
    (4 B per logit) fits the freed range of the logits and their fp32 copy (6 B) once, so 2 B per logit stay
    cached (planner/work/kernels.py loss_cache_bytes): 2 x (2 x 8192 tokens) x 128256 for Llama 3.1 8B, mb 2."""
    logits = 2 * 8192 * 128256
    est = _estimate(micro_batch_size=2, recompute="op")
    assert est.mechanisms.loss_cache_bytes == pytest.approx(2 * logits)
    assert est.worst_stage.breakdown.peak_at == "backward"
    tp = _estimate(layout=Layout(tp=2, dp=4, zero_stage=3, sequence_parallel=True), micro_batch_size=2, recompute="op")
    assert tp.mechanisms.loss_cache_bytes == pytest.approx(2 * logits / 2)  # loss_parallel: per local logit
    # with pipelining the loss runs in the schedule, which frees no logits; a compiled loss and FSDP1 are other paths
    pp = _estimate(layout=Layout(tp=1, pp=2, dp=4, zero_stage=3), micro_batch_size=1, recompute="full")
    assert pp.mechanisms.loss_cache_bytes == 0.0
    compiled = _estimate(recipe="torchtitan-2506", compile=True, micro_batch_size=2, recompute="op")
    assert compiled.mechanisms.loss_cache_bytes == 0.0
    assert _estimate(recipe="fsdp1", micro_batch_size=2, recompute="op").mechanisms.loss_cache_bytes == 0.0


def test_fp8_all_gather_gathers_linear_weights_in_one_byte():
    est = _estimate(precision="fp8", fp8_all_gather=True, recompute="op")
    assert est.mechanisms.sharded_data_parallel.gather_bytes_per_param == 1.0
    with pytest.raises(ValueError, match="fp8 all-gather needs precision fp8"):
        TrainingSpec(global_batch_size=16, fp8_all_gather=True)


def test_compile_fuses_the_eager_pointwise_kernels():
    eager, compiled = _estimate(recompute="op"), _estimate(recompute="op", compile=True)
    kernels = lambda e: sum(c.kernels for c in e.ops.classes)  # noqa: E731
    assert kernels(compiled) < kernels(eager) and compiled.step_time_s < eager.step_time_s


def test_the_derived_recipe_inherits_every_rule_it_does_not_state():
    base, derived = load_recipe("torchtitan-0.3"), load_recipe("torchtitan")
    assert derived.base == "torchtitan-0.3" and derived.attention_kernel_table == "fa2"
    assert load_recipe("torchtitan-2412") == derived and load_recipe("fsdp") == derived  # the aliases
    assert derived.fsdp_reshard_after_forward == base.fsdp_reshard_after_forward
    assert derived.sources["fsdp_stream_pools"] == base.sources["fsdp_stream_pools"]
    assert derived.sources["attention_kernel_table"] != base.sources["attention_kernel_table"]


@pytest.mark.parametrize("framework,recompute,refused", [
    ("torchtitan", "selective", True), ("torchtitan", "op", False),
    ("megatron", "op", True), ("megatron", "selective", False), ("deepspeed", "op", True)])
def test_recompute_kinds_each_framework_has(framework, recompute, refused):
    training = TrainingSpec(global_batch_size=16, recompute=recompute)
    why = refusal(framework, load_model(L8B), training, Layout(tp=1, dp=8, zero_stage=3 if framework != "megatron" else 1))
    assert (why is not None and "recompute" in why) == refused


def test_the_search_tries_the_recompute_kinds_of_the_recipes_framework():
    c = SearchConstraints()
    assert recompute_options(c, TrainingSpec(global_batch_size=16, recipe="torchtitan")) == ("none", "op", "full")
    assert recompute_options(c, TrainingSpec(global_batch_size=16, recipe="megatron-core")) == (
        "none", "selective", "full")


def test_an_unknown_power_limit_table_is_refused():
    dev = load_hardware("a100-sxm-80gb").device
    with pytest.raises((SpecError, ValueError)):
        type(dev).model_validate({**dev.model_dump(), "power_limit_w": 300.0, "tensor_clock_by_power": []})


def test_dtensor_sequence_parallel_keeps_the_gathered_linear_inputs():
    """torchtitan (DTensor SP) keeps qkv's and fc1's all-gathered input: 2 x (T - T/tp) x h x 2 B more per layer
    than Megatron's SP, which keeps the shard and gathers again in backward."""
    m, lay = load_model(L8B), Layout(tp=4, dp=2, sequence_parallel=True)
    trn = dict(global_batch_size=16, seq_length=8192)
    tokens = 8192
    base = load_recipe("torchtitan")
    from planner.work import memory as mem

    off = base.model_copy(update={"sp_saves_gathered_inputs": False})
    d = mem.dims(m, TrainingSpec(recipe="torchtitan", **trn), lay)
    assert mem.gathered_input_extra(d, base) == 2 * (tokens - tokens / 4) * 4096
    assert mem.gathered_input_extra(d, off) == 0.0


def test_a_framework_that_compiles_its_loss_keeps_no_fp32_logits():
    """torchtitan since 2025-04 compiles its loss with --compile (Inductor fuses upcast, log_softmax and nll):
    6 B per logit at the loss peak instead of the eager fp32 path's 12; the 2024-12 stack compiled only blocks."""
    from planner.work.kernels import loss_peak_bytes

    june, dec = load_recipe("torchtitan-2506"), load_recipe("torchtitan")
    assert june.compile_covers_loss and not dec.compile_covers_loss
    assert loss_peak_bytes(10, 100, june) == loss_peak_bytes(10, 100, dec) == 12.0 * 1000
    assert loss_peak_bytes(10, 100, june.compiled()) == 6.0 * 1000
    assert loss_peak_bytes(10, 100, dec.compiled()) == 12.0 * 1000
    eager = _estimate(recompute="op", recipe="torchtitan-2506")
    compiled = _estimate(recompute="op", recipe="torchtitan-2506", compile=True)
    assert compiled.peak_memory_bytes < eager.peak_memory_bytes


def test_a_rank_steps_the_tensors_its_flat_parameter_slice_overlaps():
    from planner.work.optimizer_tensors import tensors_on_busiest_rank

    assert tensors_on_busiest_rank((1.0, 1.0, 1.0, 1.0), 1) == 4  # unsharded: every tensor
    assert tensors_on_busiest_rank((1.0, 1.0, 1.0, 1.0), 4) == 1  # slices on the tensor boundaries
    assert tensors_on_busiest_rank((1.0, 1.0, 1.0, 1.0), 2) == 2
    assert tensors_on_busiest_rank((4096.0, 12.0, 4.0, 4.0, 4096.0), 8) == 4  # the small tensors share a slice


def test_composers_per_tensor_optimizer_loop_pays_its_host_launches():
    """LLM Foundry's DecoupledAdamW syncs on each tensor's step count: the foreach passes plus 11 unhidden
    launches per tensor; the plain fsdp1 recipe's AdamW runs foreach over the list, its launches hidden."""
    lay = Layout(tp=1, dp=8, zero_stage=3, fsdp=True)
    loop = _estimate(model="llama2-7b", hw="h100-sxm-80gb", layout=lay, recipe="llm-foundry", seq_length=2048)
    plain = _estimate(model="llama2-7b", hw="h100-sxm-80gb", layout=lay, recipe="fsdp1", seq_length=2048)
    assert loop.time.optimizer > plain.time.optimizer > 0
    from planner.pricing.pricer import Pricer

    training = TrainingSpec(global_batch_size=16, seq_length=2048, recipe="llm-foundry")
    pricer = Pricer(load_hardware("h100-sxm-80gb"), training, lay, 8)
    extra = pricer.optimizer_time(1e8, 0.0, 100) - pricer.optimizer_time(1e8, 0.0, 0)
    assert extra == pytest.approx(100 * 11 * training.recipe_spec.host_dispatch_us * 1e-6)


def test_dtensor_sp_norm_gradients_are_all_reduced_by_each_optimizer_read():
    """The validator's tp2 + sp job (4 GPT layers: 9 LayerNorms of weight and bias) issues 18 all-reduces inside
    its fused Adam (docs/validation.md): 18 Partial gradients read once each; none without sequence parallelism."""
    from planner.work.optimizer_tensors import sp_norm_grad_allreduce
    from validate.job import tiny_model

    m = tiny_model()
    t = TrainingSpec(seq_length=64, global_batch_size=8, micro_batch_size=2, recipe="torch-amp")
    (c,) = sp_norm_grad_allreduce(m, t, Layout(tp=2, sequence_parallel=True), 4, True, True)
    assert (c.kind, c.axis, c.calls) == ("all-reduce", "tp", 18)
    assert c.bytes == 18 * m.hidden_size * t.recipe_spec.grad_bytes
    assert sp_norm_grad_allreduce(m, t, Layout(tp=2), 4, True, True) == ()
    assert sp_norm_grad_allreduce(m, t.replace(recipe="megatron-core"), Layout(tp=2, sequence_parallel=True), 4,
                                  True, True) == ()


def test_a_cpu_runs_fsdp_collectives_between_the_compute():
    """FSDP2 overlaps its prefetched gathers only through side streams, which a CPU does not have
    (device.concurrent_streams false, hwprofiles/hardware/cpu-host.yaml): every gather and reduce-scatter is
    exposed there, while the same profile with concurrent streams hides them under the compute."""
    from hwprofiles import load_hardware
    from planner.cost import estimate
    from validate.job import tiny_model

    cpu = load_hardware("cpu-host")
    assert cpu.device.concurrent_streams is False
    streams = cpu.model_copy(update={"device": cpu.device.model_copy(update={"concurrent_streams": True})})
    t = TrainingSpec(seq_length=64, global_batch_size=8, micro_batch_size=2, recipe="torch-amp")
    lay = Layout(dp=2, zero_stage=3, fsdp=True)
    serial, overlapped = (estimate(tiny_model(), hw, t, lay, breakdown=True) for hw in (cpu, streams))
    assert serial.mechanisms.sharded_data_parallel.serialized
    assert not overlapped.mechanisms.sharded_data_parallel.serialized
    assert serial.time.dp_comm_exposed > overlapped.time.dp_comm_exposed


def test_fsdp_shard_grad_op_reduces_and_gathers_each_unit():
    """FSDP's ZeRO-2 (SHARD_GRAD_OP) issues one reduce-scatter and one all-gather per FSDP unit, each paying the
    ring latency; the bucketed ZeRO-2 of DeepSpeed / Megatron is priced as one call."""
    from planner.work.step import build_step

    lay = Layout(dp=8, zero_stage=2)
    model = load_model(L8B)

    def calls(recipe):
        step = build_step(model, TrainingSpec(global_batch_size=16, seq_length=8192, recipe=recipe), lay)
        return {c.name: c.calls for c in step.stages[0].per_step_comm}

    units = model.num_layers + 1  # a unit per block, plus the root (embedding and head)
    assert calls("llm-foundry") == {"grads.reduce_scatter": units, "params.allgather": units}
    assert calls("deepspeed") == {"grads.reduce_scatter": 1, "params.allgather": 1}


def test_hybrid_sharding_all_reduces_each_units_shard_after_its_reduce_scatter():
    """HSDP (shard over 8, 2 replicas): FSDP1's ``_reduce_grad`` and FSDP2's ``foreach_reduce`` all-reduce each unit's
    reduce-scattered shard across the replicas right after its reduce-scatter, on their own stream, in every
    micro-batch's backward: one call per unit of the shard's bytes, none left for the end of the step."""
    from planner.work.params import parameter_counts
    from planner.work.step import build_step

    model = load_model(L8B)
    lay = Layout(dp=16, zero_stage=3, fsdp=True, dp_shard=8)
    step = build_step(model, TrainingSpec(global_batch_size=32, seq_length=8192, recipe="torchtitan"), lay)
    stage = step.stages[0]
    units = model.num_layers + 1
    ar = [c for c in stage.per_microbatch_comm if c.axis == "dp_replicate"]
    rs = [c for c in stage.per_microbatch_comm if c.kind == "reduce-scatter"]
    assert [c.kind for c in ar] == ["all-reduce"] and ar[0].calls == units == rs[0].calls
    assert ar[0].phase == rs[0].phase == "bwd_weight"
    assert ar[0].bytes == pytest.approx(rs[0].bytes / 8)  # the shard a rank holds after the reduce-scatter
    assert parameter_counts(model).total * 4 / 8 == pytest.approx(ar[0].bytes, rel=0.01)  # fp32 reduce (torchtitan)
    assert not [c for c in stage.per_step_comm if c.axis == "dp_replicate"]
