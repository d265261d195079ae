"""Published measured runs (the hwprofiles/data/published_runs.csv schema) as paraplan scenarios.

Each CSV row becomes a :class:`BenchCase` (a Scenario plus what was measured and how), or raises
:class:`Unmappable` with the reason it cannot be predicted. Column meanings and the FLOPs conventions are in
hwprofiles/data/PUBLISHED_RUNS.md. Nothing here depends on a row's id or source: two rows with
the same settings become the same scenario.

Hardware → profile (first match wins; ``--hardware-map`` entries are tried before these):
``A100*`` with ``gpu_mem_gb`` 40 → a100-sxm-40gb; other ``A100*`` → a100-sxm-80gb; ``H100*`` →
h100-sxm-80gb; ``H800*`` → h800; ``MI250X*`` → mi250x-frontier. Anything else (V100, ...) is skipped.

Architecture: layers, hidden, heads, kv_heads (blank = heads), ffn_hidden, vocab (as padded in
the row) and seq_len are read. A model is *Llama-like* when its name contains llama, mistral,
mixtral, qwen, gemma, deepseek or internlm, or its notes mention SwiGLU: then SwiGLU FFN, RMSNorm,
RoPE, no linear biases and an untied output projection. Otherwise GPT style (GeLU, LayerNorm,
learned positions, biases, tied embeddings), amended by the notes: "ALiBi" (or a BLOOM/MPT name)
→ ALiBi positions; "rotary"/"RoPE" → RoPE; "no biases" → no biases; "untied" → untied;
"embed... LayerNorm" → a norm after the embedding. A row with a ``moe`` entry names its zoo model
("zoo: deepseek-v3"; planner.bench.moe_rows), whose architecture (experts, MLA, ...) the columns
cannot hold; its ``ep`` column is read. A row missing an architecture column is skipped.

Documented defaults for unstated settings (each use is listed in ``defaults_used``; a row with
an empty list is *fully stated*):

============== ============================== ==================================================
setting        unstated when                  default
============== ============================== ==================================================
micro_batch    blank                          1
global batch   no ``global_batch_seqs``       ``global_batch_tokens / seq_len``, rounded to the
                                              nearest multiple of micro_batch x dp (flagged only
                                              when rounding changed it)
vpp            text ("interleaved, chunks not the smallest v >= 2 dividing layers / pp
               given") or blank with pp > 1   (1 when none does; blank → 1)
sequence_par.  blank / "not stated", tp > 1   on when the cell says "standard with TP>1", else off
zero_or_fsdp   blank                          no sharding (ZeRO-0)
recompute      blank                          the cheapest of none → selective → full whose
                                              estimate fits in device memory
precision      blank / "not stated"           bf16 ("mixed" without a dtype is bf16 and is not
                                              flagged when the profile's fp16 and bf16 peaks
                                              are equal: the choice cannot change a prediction)
flash_attn.    blank / "not stated"           on for frameworks that fuse attention by default
                                              (Megatron-Core, NeMo, Megatron-Bridge, torchtitan,
                                              LLM Foundry) and with cp > 1, else off
FLOPs conv.    tflops_kind "unspecified"      Megatron Eq. 3 (f = 4 with full recompute, else 3)
                                              for Megatron-family frameworks (Megatron, GPT-NeoX,
                                              DeepSpeed); flagged only when TFLOP/s is the
                                              compared figure
============== ============================== ==================================================

Stated settings read without a flag: the framework recipe from the framework column
(:func:`row_recipe`: Megatron-Core / NeMo / Megatron-Bridge -> ``megatron-core``, torchtitan ->
``torchtitan``, DeepSpeed / Megatron-DeepSpeed / GPT-NeoX / BigScience -> ``deepspeed``, other FSDP
stacks -> ``fsdp1``, else ``megatron-lm``), whose defaults fill what the row leaves unsaid (dropout,
TP-comm overlap, distributed optimizer, overlapped grad reduce / param gather; Megatron-Core's
sequence parallelism with tp > 1, still flagged as a default); the Megatron distributed optimizer,
SGD when the notes say so, and a data-parallel reduction that the notes say is "not overlapped"; the context-parallel exchange when the notes name
``--cp-comm-type allgather`` or ``p2p`` (else the recipe's default). A
ZeRO cell "no" or "no (DDP + ...)" is plain data parallelism. An unstated vpp is 1 under the
``deepspeed`` recipe (DeepSpeed's PipelineEngine has no interleaved schedule). A Megatron row whose pp
does not divide its layers is split the way Megatron runs it (planner.bench.stages: paraplan's Megatron
default, interleaved through the uneven stages when vpp > 1). Rows with parameter CPU
offload are skipped (not modelled).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hwprofiles.recipe_loader import load_recipe

from ..errors import SpecError
from ..scenario import Scenario
from ..specs import HardwareProfile, Layout, ModelSpec, TrainingSpec
from ..work.params import parameter_counts
from .cells import (
    FUSED_ATTENTION_FRAMEWORKS,
    Unmappable,
    derived_fields,
    flops_convention,
    int_cell,
    measured_tflops,
    number_cell,
    read_rows,
    row_attention_kernel,
    row_compile,
    row_dp_shard,
    row_grad_accumulation_fusion,
    row_memory_kind,
    row_recipe,
    row_release_recipe,
    row_sharding,
    yes_no_cell,
)
from .moe_rows import moe_model, row_ep, row_moe_training, row_pipeline_layout
from .row_hardware import row_hardware
from .stages import row_stage_layers

__all__ = ["BenchCase", "ConventionInputs", "HardwareMap", "Unmappable", "build_case", "flops_convention",
           "parse_hardware_map", "profile_for", "read_rows", "row_recipe"]

DEFAULT_HARDWARE_MAP: tuple[tuple[str, int | None, str], ...] = (
    ("A100", 40, "a100-sxm-40gb"),
    ("A100", None, "a100-sxm-80gb"),
    ("H100", 96, "h100-sxm-96gb-500w"),
    ("H100", None, "h100-sxm-80gb"),
    ("H800", None, "h800"),
    ("H200", None, "h200-sxm-141gb"),
    ("MI250X", None, "mi250x-frontier"),
)
LLAMA_LIKE = re.compile(r"llama|mistral|mixtral|qwen|gemma|deepseek|internlm", re.I)
RECOMPUTE_ORDER = ("none", "selective", "full")
#: A precision cell naming FSDP's float8 all-gather (torchao enable_fsdp_float8_all_gather)
FP8_ALL_GATHER = re.compile(r"float8 all-gather|fp8 all-gather", re.I)

HardwareMap = tuple[tuple[str, int | None, str], ...]


@dataclass(frozen=True)
class ConventionInputs:
    """The row's own numbers that a published FLOPs formula needs (B sequences per step)."""

    batch: int
    seq: int
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn_hidden: int
    vocab: int
    swiglu: bool
    params: float  # the row's parameter count (params_b x 1e9), or paraplan's total when blank
    recompute: str  # the (stated or default) recompute setting
    model: ModelSpec | None = None  # the row's model (MoE-aware conventions read experts, MLA, ...)
    tp: int = 1  # tensor-parallel degree (Megatron-Bridge pads the vocabulary to 128 * tp)
    mtp_layers: int = 0  # multi-token-prediction layers the run trained (counted by Megatron-Bridge)


@dataclass(frozen=True)
class BenchCase:
    """One mappable row: the scenario to predict and what the row measured."""

    row_id: str
    source_id: str
    model_name: str
    hardware_label: str
    scenario: Scenario
    convention: str | None  # FLOPs convention key of tflops_per_gpu (see accuracy.CONVENTIONS)
    convention_defaulted: bool
    measured_tflops: float | None  # per GPU, on ``convention``
    measured_step_s: float | None  # sec_per_iter, only when read (not derived) from the source
    inputs: ConventionInputs
    defaults_used: tuple[str, ...]
    flags: tuple[str, ...]
    measured_tokens_per_gpu: float | None = None  # tokens/s per GPU, read (not derived) from the source
    moe: bool = False  # a mixture-of-experts model
    measured_memory_gib: float | None = None  # peak_mem_gb (GiB as the source logs it)
    memory_kind: str = "unstated"  # which peak: reserved, allocated or unstated (cells.row_memory_kind)


def parse_hardware_map(entries: list[str] | None) -> HardwareMap:
    """``PREFIX[@MEM_GB]=PROFILE`` entries (PROFILE a name or YAML path); SpecError when malformed."""
    out = []
    for entry in entries or []:
        key, sep, profile = entry.partition("=")
        prefix, _, mem = key.partition("@")
        if not sep or not prefix.strip() or not profile.strip() or (mem and not mem.strip().isdigit()):
            raise SpecError(f"'{entry}' is not PREFIX[@MEM_GB]=PROFILE (e.g. V100=my-v100.yaml, "
                            "A100@40=a100-sxm-40gb)", field="--hardware-map")
        out.append((prefix.strip(), int(mem) if mem else None, profile.strip()))
    return tuple(out)


def profile_for(row: dict[str, str], hardware_map: HardwareMap) -> str | None:
    """Profile name (or path) for the row's hardware, or None when nothing matches."""
    label = row["hardware"].upper()
    mem = number_cell(row, "gpu_mem_gb")
    for prefix, mem_gb, profile in hardware_map + DEFAULT_HARDWARE_MAP:
        if label.startswith(prefix.upper()) and (mem_gb is None or (mem is not None and int(mem) == mem_gb)):
            return profile
    return None


def build_model(row: dict[str, str]) -> tuple[ModelSpec, bool]:
    """The ModelSpec of the row's architecture columns, and whether it is Llama-like (SwiGLU)."""
    if row["moe"]:
        return moe_model(row), True
    missing = [c for c in ("layers", "hidden", "heads", "ffn_hidden", "seq_len", "vocab") if not row[c]]
    if missing:
        raise Unmappable(f"architecture not stated: {', '.join(missing)}")
    name, notes = row["model"], row["notes"]
    llama = bool(LLAMA_LIKE.search(name) or re.search(r"swiglu", notes, re.I))
    position = "learned"  # also MPT whose notes say so (llm-foundry 5e85bd62d yamls: learned_pos_emb)
    if re.search(r"alibi", notes, re.I) or (re.match(r"(bloom|mpt)", name, re.I)
                                             and not re.search(r"learned positional embeddings", notes, re.I)):
        position = "alibi"
    elif llama or re.search(r"rotary|rope\b", notes, re.I):
        position = "rope"
    heads = int_cell(row, "heads", required=True)
    seq = int_cell(row, "seq_len", required=True)
    try:
        model = ModelSpec(
            name=name, num_layers=int_cell(row, "layers", required=True), hidden_size=int_cell(row, "hidden", required=True),
            num_heads=heads, num_kv_heads=int_cell(row, "kv_heads") or heads,
            ffn_hidden_size=int_cell(row, "ffn_hidden", required=True),
            ffn_kind="swiglu" if llama else "gelu", norm_kind="rmsnorm" if llama else "layernorm",
            vocab_size=int_cell(row, "vocab", required=True),
            tied_embeddings=not (llama or re.search(r"untied", notes, re.I)),
            position_kind=position, max_position_embeddings=seq,
            linear_bias=not (llama or re.search(r"no biases", notes, re.I)),
            embedding_norm=bool(re.search(r"embed\w*\s+layernorm", notes, re.I)),
            source=f"published_runs.csv row {row['row_id']}: {row.get('source', row['source_id'])}",
        )
    except ValueError as exc:
        raise Unmappable(f"architecture: {str(exc).splitlines()[-1].strip()}") from None
    return model, llama


def _precision(text: str, hardware: HardwareProfile) -> tuple[str, bool]:
    """(precision, defaulted) from the precision cell."""
    low = text.lower()
    if low.startswith("mixed"):  # 16-bit mixed precision, dtype unnamed
        peaks = hardware.device.peak_tflops
        return "bf16", peaks.fp16 != peaks.bf16  # only flagged when the choice matters
    if not low or "not stated" in low:
        return "bf16", True
    if "fp8" in low:
        return "fp8", False
    if "bf16" in low:
        return "bf16", False
    if "fp16" in low:
        return "fp16", False
    raise Unmappable(f"precision '{text}' not understood")


def _recompute(text: str) -> str | None:
    """none / selective / op / full from the recompute cell: torchtitan's per-op selective checkpointing
    (``selective_ac_option 'op'``) is ``op``, not Megatron's attention-core ``selective``."""
    low = text.lower()
    if low.startswith("selective") and re.search(r"selective_ac_option\s*'?op\b|per-op", low):
        return "op"
    for kind in ("selective", "full", "none"):
        if low.startswith(kind):
            return kind
    return None


def _vpp(row: dict[str, str], layers: int, pp: int, recipe: str = "megatron-lm") -> tuple[int, bool]:
    text = row["vpp"]
    if text.isdigit():
        return int(text), False
    if pp == 1:
        return 1, False
    if not text or recipe.startswith("deepspeed"):  # DeepSpeed's PipelineEngine runs plain 1F1B (no interleaving:
        return 1, True  # deepspeed/runtime/pipe/schedule.py TrainSchedule)
    per_stage = layers // pp if layers % pp == 0 else 0
    v = next((v for v in range(2, per_stage + 1) if per_stage % v == 0), 1)
    return v, True


def row_tp_comm_overlap(notes: str) -> bool | None:
    """TP-comm overlap as the row's notes state its run config: off for ``tp_comm_overlap=False`` (Megatron-Bridge's
    CommOverlapConfig) or ``no --tp-comm-overlap``, on for ``--tp-comm-overlap``; None (the recipe's default)."""
    if re.search(r"tp_comm_overlap=False|no --tp-comm-overlap", notes):
        return False
    return True if "--tp-comm-overlap" in notes else None


def build_case(row: dict[str, str], hardware_map: HardwareMap,
               load_hardware: Callable[[str], HardwareProfile],
               fits: Callable[[Scenario], bool]) -> BenchCase:
    """The BenchCase of one row; raises Unmappable with the reason when it cannot be predicted.

    ``load_hardware`` resolves a profile name/path; ``fits`` tells whether a scenario fits in
    memory (used for the recompute default only)."""
    profile = profile_for(row, hardware_map)
    if profile is None:
        raise Unmappable(f"no hardware profile for '{row['hardware']}' (add --hardware-map)")
    hw = row_hardware(load_hardware(profile), row)
    model, llama = build_model(row)
    defaults: list[str] = []
    flags: list[str] = []
    tp, pp, cp = int_cell(row, "tp") or 1, int_cell(row, "pp") or 1, int_cell(row, "cp") or 1
    if not row["tp"] or not row["pp"]:
        raise Unmappable("tp/pp not stated")
    gpus, dp = int_cell(row, "num_gpus"), int_cell(row, "dp")
    if gpus is None and dp is None:
        raise Unmappable("num_gpus and dp not stated")
    gpus = gpus or tp * pp * cp * dp
    dp = dp or gpus // (tp * pp * cp)
    if tp * pp * cp * dp != gpus:
        raise Unmappable(f"tp({tp}) * pp({pp}) * cp({cp}) * dp({dp}) != num_gpus({gpus})")
    seq = int_cell(row, "seq_len", required=True)
    mb = int_cell(row, "micro_batch")
    if mb is None:
        mb = 1
        defaults.append("micro_batch")
    gbs = int_cell(row, "global_batch_seqs")
    if gbs is None:
        tokens = number_cell(row, "global_batch_tokens")
        if not tokens:
            raise Unmappable("global batch not stated")
        unit = mb * dp
        gbs = max(unit, round(tokens / seq / unit) * unit)
        if gbs * seq != tokens:
            defaults.append("global_batch")
    zero, fsdp, dist_opt, zero_default = row_sharding(row["zero_or_fsdp"])
    framework = row["framework"]
    recipe = row_release_recipe(framework) or row_recipe(framework, fsdp, row["precision"])
    recipe_spec = load_recipe(recipe)
    vpp, vpp_default = _vpp(row, model.num_layers, pp, recipe)
    if vpp_default:
        defaults.append("vpp")
    sp_stated = yes_no_cell(row["sequence_parallel"])
    sp = sp_stated if sp_stated is not None else (tp > 1 and ("standard with tp>1" in row["sequence_parallel"].lower()
                                                               or recipe_spec.sequence_parallel_default))
    if tp > 1 and sp_stated is None:
        defaults.append("sequence_parallel")
    if zero_default:
        defaults.append(zero_default)
    precision, prec_default = _precision(row["precision"], hw)
    if prec_default:
        defaults.append("precision")
    flash = yes_no_cell(row["flash_attention"])
    if flash is None:  # context parallelism runs a fused kernel per K/V chunk in every framework that has it
        flash = cp > 1 or bool(FUSED_ATTENTION_FRAMEWORKS.search(row["framework"]))
        defaults.append("flash_attention")
    attention_kernel = row_attention_kernel(framework, hw, row["flash_attention"]) if flash else None
    if attention_kernel:
        flags.append(f"attention_{attention_kernel}")  # the release's launcher turns cuDNN attention off
    grad_fusion = row_grad_accumulation_fusion(framework)
    if grad_fusion is False:
        flags.append("grad_accumulation_unfused")  # the release predates Megatron's fused wgrad accumulation
    if re.search(r"microbatch-level", row["recompute"], re.I):
        flags.append("recompute_approximated")
        defaults.append("recompute")
    cp_kind = next((k for k, flag in (("allgather", "--cp-comm-type allgather"), ("ring", "--cp-comm-type p2p"))
                    if flag in row["notes"]), None)  # None: the recipe's default exchange
    experts, etp_default = row_ep(row, model, tp * cp * dp, tp)
    if etp_default:
        defaults.append("etp")
    moe_training = row_moe_training(row) if model.is_moe else {}
    split = row_pipeline_layout(row, model, pp, vpp, moe_training.get("mtp_layers", 0)) or {
        "stage_layers": row_stage_layers(framework, recipe, model.num_layers, pp, vpp)}
    dp_shard = row_dp_shard(row, hw.node.devices_per_node, dp) if fsdp else None
    layout = Layout(tp=tp, pp=pp, dp=dp, cp=cp, cp_kind=cp_kind, vpp=vpp, zero_stage=zero, fsdp=fsdp, dp_shard=dp_shard,
                    **split,
                    sequence_parallel=sp, schedule="interleaved-1f1b" if vpp > 1 else "1f1b", **experts)
    base = dict(seq_length=seq, global_batch_size=gbs, micro_batch_size=mb, precision=precision, recipe=recipe,
                optimizer="sgd" if re.search(r"\bSGD\b", row["notes"]) else "adam",
                flash_attention=flash, attention_kernel=attention_kernel,
                distributed_optimizer=dist_opt or (None if zero_default else False),
                overlap_dp_comm=False if re.search(r"not overlapped", row["notes"], re.I) else None,
                grad_accumulation_fusion=grad_fusion, compile=row_compile(framework),
                fp8_all_gather=precision == "fp8" and bool(FP8_ALL_GATHER.search(row["precision"])),
                overlap_param_gather=True if "--overlap-param-gather" in row["notes"] else None,
                tp_comm_overlap=row_tp_comm_overlap(row["notes"]),
                **moe_training)
    try:
        recompute = _recompute(row["recompute"])
        if recompute is None:
            defaults.append("recompute")
            candidates = [Scenario(model=model, hardware=hw, gpus=gpus, layout=layout,
                                   training=TrainingSpec(**base, recompute=r)) for r in RECOMPUTE_ORDER]
            scenario = next((s for s in candidates if fits(s)), candidates[-1])
        else:
            scenario = Scenario(model=model, hardware=hw, gpus=gpus, layout=layout,
                                training=TrainingSpec(**base, recompute=recompute))
    except (SpecError, ValueError) as exc:
        raise Unmappable(str(exc).splitlines()[-1].strip()) from None
    per_node = int_cell(row, "gpus_per_node") if row.get("gpus_per_node") else None
    if per_node and per_node != hw.node.devices_per_node:
        flags.append("node_size_differs")
    convention, conv_default = flops_convention(row)
    measured_step = number_cell(row, "sec_per_iter") if "sec_per_iter" not in derived_fields(row) else None
    measured_tokens = (number_cell(row, "tokens_per_sec_per_gpu")
                       if "tokens_per_sec_per_gpu" not in derived_fields(row) else None)
    if conv_default and measured_step is None:
        defaults.append("flops_convention")
    inputs = ConventionInputs(
        batch=gbs, seq=seq, layers=model.num_layers, hidden=model.hidden_size, heads=model.num_heads,
        kv_heads=model.kv_heads, head_dim=model.head_size, ffn_hidden=model.ffn_hidden_size,
        vocab=model.vocab_size, swiglu=llama,
        params=(number_cell(row, "params_b") or 0.0) * 1e9 or float(parameter_counts(model).total),
        recompute=scenario.training.recompute, model=model, tp=tp, mtp_layers=scenario.training.mtp_layers,
    )
    return BenchCase(
        row_id=row["row_id"], source_id=row["source_id"], model_name=row["model"],
        hardware_label=row["hardware"], scenario=scenario, convention=convention,
        convention_defaulted=conv_default, measured_tflops=measured_tflops(row),
        measured_step_s=measured_step, inputs=inputs, defaults_used=tuple(defaults), flags=tuple(flags),
        measured_tokens_per_gpu=measured_tokens, moe=model.is_moe,
        measured_memory_gib=number_cell(row, "peak_mem_gb"), memory_kind=row_memory_kind(row["notes"]),
    )


