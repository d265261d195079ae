"""The fixed set of plans whose exports the frameworks' own code checks (issue 14), and what each
framework must answer: None = it accepts the export, a string = paraplan refuses with a reason
containing it (and writes nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from hwprofiles import load_hardware, load_model
from hwprofiles.hf_config import model_from_hf_config
from planner.scenario import Scenario
from planner.search import SearchConstraints, search
from planner.specs import Layout, TrainingSpec

# Qwen/Qwen2-1.5B config.json on Hugging Face (public architecture numbers): QKV biases, tied embeddings.
QWEN2_1_5B = {"model_type": "qwen2", "hidden_act": "silu", "hidden_size": 1536, "intermediate_size": 8960,
              "num_attention_heads": 12, "num_hidden_layers": 28, "num_key_value_heads": 2,
              "max_position_embeddings": 131072, "rope_theta": 1000000.0, "tie_word_embeddings": True,
              "vocab_size": 151936}
MIXTRAL = "tests/data/hf/mixtral-8x7b/config.json"


@dataclass(frozen=True)
class FrameworkPlan:
    """A plan and the verdict of each export target on it."""

    name: str
    scenario: Scenario
    megatron: str | None
    deepspeed: str | None
    torchtitan: str | None


def _sc(model, hw: str, layout: Layout, **trn) -> Scenario:
    m = load_model(model) if isinstance(model, str) else model
    return Scenario(model=m, hardware=load_hardware(hw), gpus=layout.gpus, training=TrainingSpec(**trn),
                    layout=layout)


def best_plan(model: str, hw: str, gpus: int, global_batch: int, framework: str, **trn) -> Scenario:
    """The best plan of ``paraplan plan ... --framework FRAMEWORK`` (priced with that framework's
    default recipe, as the CLI does)."""
    from planner.frameworks import DEFAULT_RECIPE

    m, h = load_model(model), load_hardware(hw)
    training = TrainingSpec(global_batch_size=global_batch, recipe=DEFAULT_RECIPE[framework], **trn)
    res = search(m, h, gpus, training, SearchConstraints(framework=framework), top=1)
    return Scenario(model=m, hardware=h, gpus=res.best.gpus, training=res.best.training, layout=res.best.layout)


@cache
def plans() -> tuple[FrameworkPlan, ...]:
    from pathlib import Path

    from planner.io import read_json

    root = Path(__file__).resolve().parents[2]
    mixtral = model_from_hf_config(read_json(root / MIXTRAL, "config"), source=MIXTRAL, default_name="mixtral-8x7b")
    qwen2 = model_from_hf_config(QWEN2_1_5B, source="Qwen/Qwen2-1.5B config.json", default_name="qwen2-1.5b")
    l405 = Layout(tp=8, pp=16, vpp=4, dp=128, zero_stage=1, sequence_parallel=True, schedule="interleaved-1f1b",
                  stage_layers=[7] + [8] * 14 + [7])
    f175 = best_plan("frontier-175b", "mi250x-frontier", 1024, 640, "megatron")
    f1t = best_plan("frontier-1t", "mi250x-frontier", 1024, 1024, "megatron")
    interleaved_or_uneven = "schedule"
    # Llama 3 70B on one node of 8 H100, global batch 64 x 4096 (issue 17): fits only with CPU offload;
    # each framework's search picks the lightest level it can express.
    off = {fw: best_plan("llama3-70b", "h100-sxm-80gb", 8, 64, fw, seq_length=4096)
           for fw in ("megatron", "deepspeed", "torchtitan")}
    assert [off[fw].training.offload.describe() for fw in off] == ["off:opt", "off:opt+grad", "off:opt+grad+param"]
    all_off = {"optimizer": True, "gradients": True, "params": True, "activations": True}
    # Qwen3-30B-A3B, FSDP + expert parallelism (issue 23): torchtitan's qwen3 module, and the best torchtitan plan
    q30_best = best_plan("qwen3-30b-a3b", "h100-sxm-80gb", 16, 256, "torchtitan", seq_length=4096)
    assert q30_best.layout.ep > 1 and q30_best.layout.effective_zero_stage == 3
    return (
        FrameworkPlan("llama3-70b-64-fsdp-tp4-sp", _sc("llama3-70b", "h100-sxm-80gb", Layout(
            tp=4, dp=16, fsdp=True, sequence_parallel=True), global_batch_size=128, seq_length=8192,
            recompute="op"), "recompute op", "recompute op", None),
        FrameworkPlan("llama3.1-405b-16384-tp8-pp16-v4-uneven", _sc("llama3.1-405b", "h100-sxm-80gb", l405,
                      global_batch_size=2048, seq_length=8192, recompute="selective"),
                      None, "schedule interleaved-1f1b", "ZeRO-1"),
        FrameworkPlan("llama3.1-405b-16384-fsdp-pp16-v4", _sc("llama3.1-405b", "h100-sxm-80gb", l405.replace(
            zero_stage=0, fsdp=True), global_batch_size=2048, seq_length=8192, recompute="full"),
            None, "ZeRO-3 with pp(16)", None),
        FrameworkPlan("frontier-175b-best", f175, None,
                      interleaved_or_uneven if f175.layout.vpp > 1 else None, "model frontier-175b has layernorm"),
        FrameworkPlan("frontier-1t-best", f1t, None,
                      interleaved_or_uneven if f1t.layout.vpp > 1 else None, "model frontier-1t has layernorm"),
        FrameworkPlan("llama3-8b-selective", _sc("llama3-8b", "h100-sxm-80gb", Layout(
            tp=2, dp=8, fsdp=True, sequence_parallel=True), global_batch_size=64, seq_length=8192,
            recompute="selective"), None, None, "recompute selective"),
        FrameworkPlan("llama3-8b-op-sac", _sc("llama3-8b", "h100-sxm-80gb", Layout(
            tp=2, dp=8, fsdp=True, sequence_parallel=True), global_batch_size=64, seq_length=8192,
            recompute="op"), "recompute op", "recompute op", None),
        FrameworkPlan("llama3-8b-full-recompute", _sc("llama3-8b", "h100-sxm-80gb", Layout(
            tp=2, dp=8, fsdp=True, sequence_parallel=True), global_batch_size=64, seq_length=8192,
            recompute="full"), None, None, None),
        FrameworkPlan("llama3-8b-fp8", _sc("llama3-8b", "h100-sxm-80gb", Layout(tp=1, dp=8, fsdp=True),
                      global_batch_size=64, seq_length=8192, precision="fp8"), None, "fp8", None),
        FrameworkPlan("qwen2-1.5b-zero1-tp2", _sc(qwen2, "h100-sxm-80gb", Layout(
            tp=2, dp=4, zero_stage=1, sequence_parallel=True), global_batch_size=64, seq_length=4096),
            None, None, "QKV biases"),
        FrameworkPlan("mixtral-8x7b-ep8", _sc(mixtral, "h100-sxm-80gb", Layout(
            tp=2, dp=32, ep=8, zero_stage=1, sequence_parallel=True), global_batch_size=256, seq_length=4096,
            recompute="full"), None, "ep(8)", "MoE model"),
        FrameworkPlan("llama3-8b-cp8-128k", _sc("llama3-8b", "h100-sxm-80gb", Layout(
            tp=8, cp=8, dp=1, sequence_parallel=True), global_batch_size=8, seq_length=131072,
            recompute="full"), None, "cp(8)", None),
        FrameworkPlan("llama3-8b-gpipe-pp4", _sc("llama3-8b", "h100-sxm-80gb", Layout(
            tp=2, pp=4, dp=2, schedule="gpipe", sequence_parallel=True), global_batch_size=32,
            seq_length=8192), "no GPipe", "schedule gpipe", None),
        FrameworkPlan("llama3-8b-zero2-pp2", _sc("llama3-8b", "h100-sxm-80gb", Layout(
            tp=2, pp=2, dp=4, zero_stage=2, sequence_parallel=True), global_batch_size=64, seq_length=8192),
            None, "ZeRO-2 with pp(2)", "no ZeRO-1/2"),
        # DeepSpeed refuses Megatron's optimizer-only offload either way: with ZeRO-1/2 because offload_optimizer
        # also accumulates the gradients, with ZeRO-0 (dp 1) because it needs a ZeRO stage
        FrameworkPlan("llama3-70b-8-offload-best-megatron", off["megatron"], None,
                      "offload_opti", "offloads params, gradients and optimizer together"),
        # (ZeRO-1 with optimizer + gradient offload: beside ZeRO-3's gathers the H100's persistent GEMMs run in two
        # waves, so the search prefers fewer collectives; torchtitan has no ZeRO-1/2)
        FrameworkPlan("llama3-70b-8-offload-best-deepspeed", off["deepspeed"], "cannot offload gradients", None,
                      "no ZeRO-1/2"),
        FrameworkPlan("llama3-70b-8-offload-best-torchtitan", off["torchtitan"], "cannot offload gradients, params",
                      None, None),
        FrameworkPlan("llama3-70b-8-offload-all-full-recompute", _sc("llama3-70b", "h100-sxm-80gb", Layout(
            tp=2, dp=4, fsdp=True, sequence_parallel=True), global_batch_size=64, seq_length=4096,
            recompute="full", recipe="deepspeed", offload=all_off),
            "cannot offload gradients, params, activations", None, "cannot offload activations"),
        FrameworkPlan("llama3-8b-offload-opt-zero0-dp8", _sc("llama3-8b", "h100-sxm-80gb", Layout(dp=8),
                      global_batch_size=64, seq_length=4096, offload={"optimizer": True}),
                      "distributed optimizer", "with ZeRO-0", "offloads params, gradients and optimizer together"),
        # fp16 with the gradient add per micro-batch of Megatron-LM before 2022 (--no-gradient-accumulation-fusion)
        FrameworkPlan("qwen2-1.5b-fp16-unfused-grad-accumulation", _sc(qwen2, "h100-sxm-80gb", Layout(
            tp=2, dp=4, zero_stage=1, sequence_parallel=True), global_batch_size=64, seq_length=4096,
            precision="fp16", recipe="megatron-lm", grad_accumulation_fusion=False), None, None, "QKV biases"),
        FrameworkPlan("qwen3-30b-a3b-fsdp-ep8", _sc("qwen3-30b-a3b", "h100-sxm-80gb", Layout(
            dp=8, ep=8, fsdp=True), global_batch_size=256, micro_batch_size=4, seq_length=4096, recipe="torchtitan",
            recompute="full"), None, "ep(8)", None),
        # (torchtitan's December 2024 stack keeps the last stage's logits of every micro-batch to the step's end, so
        # its best plan runs without pipelining, offloading what FSDP2's CPUOffloadPolicy offloads)
        FrameworkPlan("qwen3-30b-a3b-16-best-torchtitan", q30_best,
                      "overlap-p2p-communication" if q30_best.layout.vpp > 1 and q30_best.layout.pp <= 2 else
                      "cannot offload gradients" if q30_best.training.offload.gradients else None,
                      "ZeRO-3 with pp(" if q30_best.layout.pp > 1 else "ep(", None),
        # DeepEP dispatch and the combined-1F1B all-to-all overlap on an interleaved pipeline (issue 23)
        FrameworkPlan("qwen3-30b-a3b-pp4-v2-ep4-deepep-a2a-overlap", _sc("qwen3-30b-a3b", "h100-sxm-80gb", Layout(
            pp=4, vpp=2, dp=4, ep=4, zero_stage=1, schedule="interleaved-1f1b"), global_batch_size=64, seq_length=4096,
            recipe="megatron-core", moe_token_dispatcher="deepep", moe_a2a_overlap=True), None,
            "schedule interleaved-1f1b", "ZeRO-1"),
        FrameworkPlan("llama3-8b-fsdp-fp16", _sc("llama3-8b", "h100-sxm-80gb", Layout(tp=1, dp=8, fsdp=True),
                      global_batch_size=64, seq_length=8192, precision="fp16"),
                      None, None, "fp16"),
    )
