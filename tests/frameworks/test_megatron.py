"""Megatron-LM's own parse_args + validate_args (megatron-core 0.19.2) on the fixed plans' exports."""

from __future__ import annotations

import pytest
from fw_harness import run_checker, write_exports
from fw_plans import plans

from planner.errors import SpecError
from planner.exports.megatron import padded_vocab
from planner.work.params import parameter_counts

pytestmark = pytest.mark.frameworks
EXTRA = ["--mock-data", "--tokenizer-type", "NullTokenizer", "--lr", "3e-4", "--train-iters", "10"]  # launch.sh


@pytest.fixture(scope="module")
def results(site, tmp_path_factory):
    folder = tmp_path_factory.mktemp("megatron")
    exports = write_exports("megatron", plans(), folder)
    spec = [{"dir": str(d), "world_size": p.scenario.gpus, "extra": EXTRA}
            for p in plans() if not isinstance(d := exports[p.name], SpecError)]
    return exports, run_checker(site, "fw_megatron.py", spec, folder)


@pytest.mark.parametrize("plan", plans(), ids=lambda p: p.name)
def test_megatron_accepts_or_paraplan_refuses(plan, results):
    exports, checked = results
    got = exports[plan.name]
    if plan.megatron is not None:
        assert isinstance(got, SpecError) and plan.megatron in str(got), got
        assert "[megatron/" in str(got)  # the reason cites the framework's source
        return
    assert not isinstance(got, SpecError), str(got)
    r = checked[str(got)]
    assert r["ok"], r["error"]
    a, lay, trn, model = r["args"], plan.scenario.layout, plan.scenario.training, plan.scenario.model
    assert (a["tensor_model_parallel_size"], a["pipeline_model_parallel_size"], a["data_parallel_size"]) == \
        (lay.tp, lay.pp, lay.dp)
    assert (a["virtual_pipeline_model_parallel_size"] or 1) == lay.vpp
    assert (a["context_parallel_size"], a["expert_model_parallel_size"]) == (lay.cp, lay.ep)
    assert (a["micro_batch_size"], a["global_batch_size"]) == (trn.micro_batch_size, trn.global_batch_size)
    assert a["sequence_parallel"] == lay.sequence_parallel
    assert a["use_megatron_fsdp"] == (lay.effective_zero_stage >= 2)
    if lay.effective_zero_stage >= 2:  # Megatron-FSDP: ZeRO-2 shards gradients too, ZeRO-3 parameters too
        assert a["data_parallel_sharding_strategy"] == {2: "optim_grads", 3: "optim_grads_params"}[
            lay.effective_zero_stage]
    assert a["use_distributed_optimizer"] == (lay.effective_zero_stage >= 1 or trn.offload.optimizer)
    # optimizer offload: Megatron-Core's HybridDeviceOptimizer, all of the optimizer state on the host
    assert a["optimizer_cpu_offload"] == a["use_precision_aware_optimizer"] == trn.offload.optimizer
    assert a["optimizer_offload_fraction"] == 1.0
    assert a["recompute_granularity"] == (None if trn.recompute == "none" else trn.recompute)
    assert a["gradient_accumulation_fusion"] == trn.grad_accumulation_fusion  # as priced (planner.work.step)
    assert (a["bf16"], a["fp16"], a["fp8"]) == (trn.precision != "fp16", trn.precision == "fp16",
                                                "hybrid" if trn.precision == "fp8" else None)
    assert (a["num_layers"], a["hidden_size"], a["ffn_hidden_size"], a["num_attention_heads"],
            a["num_query_groups"]) == (model.num_layers, model.hidden_size, model.ffn_hidden_size,
                                       model.num_heads, model.kv_heads)
    assert a["padded_vocab_size"] == padded_vocab(model.vocab_size, lay.tp) == model.vocab_size  # kept as planned
    assert a["untie_embeddings_and_output_weights"] == (not model.tied_embeddings)
    assert a["add_qkv_bias"] == (model.qkv_bias or model.linear_bias)
    assert a["add_bias_linear"] == model.linear_bias
    assert a["gated_linear_unit"] == (model.ffn_kind == "swiglu")
    assert a["normalization"] == ("RMSNorm" if model.norm_kind == "rmsnorm" else "LayerNorm")
    if model.position_kind == "rope":
        assert a["rotary_base"] == int(model.rope_theta or 10000)
    assert (a["num_experts"] or 0) == model.num_experts
    if not model.linear_bias and not model.qkv_bias and not model.is_moe:
        # Megatron's own count (theoretical_memory_usage.py, printed to 0.01 B; it omits biases)
        assert r["billions"]["Total number of parameters"] == round(parameter_counts(model).total / 1e9, 2)


def test_405b_runs_the_llama3_layout(results):
    """126 layers on pp16 x vpp4: the first and last virtual stages one layer short (Megatron's own
    layout parser reads it back)."""
    exports, checked = results
    r = checked[str(exports["llama3.1-405b-16384-tp8-pp16-v4-uneven"])]
    assert r["ok"], r["error"]
    layout = r["args"]["pipeline_model_parallel_layout"]
    stages = layout.split("|")
    assert len(stages) == 64 and stages[0] == "E,t*1" and stages[-1] == "t*1,L"
    assert all(s == "t*2" for s in stages[1:-1])
