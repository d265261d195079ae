"""Reading the cells of a published-runs CSV (hwprofiles/data/published_runs.csv; column meanings in
hwprofiles/data/PUBLISHED_RUNS.md): the file itself, numbers, yes/no cells, the measured TFLOP/s and
the FLOPs convention a row's figure uses."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from ..errors import SpecError
from ..io import read_input_text
from ..pricing.compute import has_attention_kernel

REQUIRED_COLUMNS = (
    "row_id", "source_id", "hardware", "gpu_mem_gb", "num_gpus", "model", "params_b", "layers", "hidden",
    "heads", "kv_heads", "ffn_hidden", "seq_len", "vocab", "moe", "tp", "pp", "vpp", "dp", "cp",
    "sequence_parallel", "zero_or_fsdp", "micro_batch", "global_batch_seqs", "global_batch_tokens",
    "recompute", "precision", "flash_attention", "framework", "tflops_per_gpu", "tflops_kind", "mfu_pct",
    "hfu_pct", "peak_tflops_basis", "sec_per_iter", "flops_formula", "derived_fields", "notes",
)

MEGATRON_FAMILY = re.compile(r"megatron|neox|deepspeed", re.I)
FUSED_ATTENTION_FRAMEWORKS = re.compile(r"megatron-core|nemo|megatron-bridge|torchtitan|foundry", re.I)


#: NeMo releases whose NeMo-Framework-Launcher config sets NVTE_FUSED_ATTN=0 ("Disable cudnn FA until we've
#: tested it more", launcher_scripts/conf/config.yaml of tags 24.03.01, 24.05, 24.07; cuDNN attention is
#: enabled from 24.09): Transformer Engine then runs flash-attn's FlashAttention-2 kernels on Hopper.
FA2_NEMO_RELEASES = re.compile(r"nemo\s*24\.0[3-7]", re.I)


#: A flash_attention cell that names the kernel generation: Triton FlashAttention (FlashAttention-1's generation in
#: Triton), FlashAttention-1 / FA1 (planner.pricing.compute.DERIVED_ATTENTION_KERNELS),
#: FlashAttention-2 / FA2, FlashAttention-3 / FA3; the first that matches wins.
NAMED_KERNELS = ((re.compile(r"triton flash-?attention", re.I), "fa1-triton"),
                 (re.compile(r"flash-?attention[- ]?1\b|\bfa-?1\b", re.I), "fa1"),
                 (re.compile(r"flash-?attention[- ]?2|\bfa-?2\b", re.I), "fa2"),
                 (re.compile(r"flash-?attention[- ]?3|\bfa-?3\b", re.I), "fa3"))


def row_attention_kernel(framework: str, hardware, flash_cell: str = "") -> str | None:
    """The attention kernel table a row implies: the generation its flash_attention cell names (FA2,
    FA3), for any framework, when the profile has that table; ``fa2`` for the NeMo releases of
    ``FA2_NEMO_RELEASES``; None (the recipe's choice, planner.pricing.compute.attention_kernel_for)
    otherwise."""
    for pattern, kernel in NAMED_KERNELS:
        if pattern.search(flash_cell) and has_attention_kernel(hardware.device, kernel):
            return kernel
    if FA2_NEMO_RELEASES.search(framework) and has_attention_kernel(hardware.device, "fa2"):
        return "fa2"
    return None


#: Framework releases that a recipe other than the framework's current one describes: a release the
#: framework column names -> the recipe of that release (hwprofiles/recipes/<name>.yaml says what differs).
RELEASE_RECIPES = ((re.compile(r"deepspeed[^()]*\(2021\)", re.I), "deepspeed-2021"),
                   (re.compile(r"composer 0\.16\.0-0\.16\.3", re.I), "llm-foundry-2309"),
                   (re.compile(r"torchtitan\s*\([0-9a-f]{7,},\s*2025-", re.I), "torchtitan-2506"))


def row_release_recipe(framework: str) -> str | None:
    """The recipe of the framework release the row's framework column names (``RELEASE_RECIPES``), or None."""
    return next((recipe for pattern, recipe in RELEASE_RECIPES if pattern.search(framework)), None)


def row_compile(framework: str) -> bool | None:
    """True when the framework column says the blocks ran under torch.compile; None (the recipe's
    default) otherwise."""
    return True if re.search(r"torch\.compile", framework, re.I) else None


def row_power_limit(hardware_label: str) -> float | None:
    """The board power limit (W) the hardware cell states ("500 W"), or None."""
    m = re.search(r"\b(\d{2,4})\s*W\b", hardware_label)
    return float(m.group(1)) if m else None


def row_memory_kind(notes: str) -> str:
    """Which peak a row's peak_mem_gb is, from its notes: 'reserved' (the caching allocator's reserved
    peak, e.g. torchtitan's max_reserved_gib), 'allocated' (max_memory_allocated), or 'unstated'."""
    low = notes.lower()
    if "reserved" in low:
        return "reserved"
    if "allocated" in low:
        return "allocated"
    return "unstated"


#: Megatron-LM releases before its "gradient accumulation fusion" commit (83b1e42f, 2022-02-13, which added
#: fused_weight_gradient_dense and --gradient-accumulation-fusion): the code of Narayanan et al. 2021 (SC21, whose
#: system the paper calls PTD-P) adds each micro-batch's weight gradients into main_grad in a backward hook
#: (megatron/model/distributed.py ``param.main_grad.add_(param.grad.data)``, at the paper's April 2021 code).
UNFUSED_GRAD_ACCUMULATION = re.compile(r"megatron-lm\s*(\(2021\)|ptd-p)", re.I)


def row_grad_accumulation_fusion(framework: str) -> bool | None:
    """False for a framework column naming a Megatron-LM release of ``UNFUSED_GRAD_ACCUMULATION``; None (the
    recipe's default) otherwise."""
    return False if UNFUSED_GRAD_ACCUMULATION.search(framework) else None


class Unmappable(Exception):
    """A row cannot be turned into a scenario (the message is the reason)."""


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """Rows of a published-runs CSV as dicts; SpecError naming the file when unreadable or when a
    required column is missing."""
    path = Path(path)
    text = read_input_text(path, "CSV")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = [{k: (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise SpecError(f"malformed CSV: {exc}", source=str(path)) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise SpecError(f"missing columns: {', '.join(missing)} (schema: published_runs.csv)",
                        source=str(path))
    return rows


def number_cell(row: dict[str, str], col: str) -> float | None:
    text = row.get(col, "")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def int_cell(row: dict[str, str], col: str, *, required: bool = False) -> int | None:
    text = row.get(col, "")
    if not text:
        if required:
            raise Unmappable(f"{col} not stated")
        return None
    try:
        value = float(text)
    except ValueError:
        raise Unmappable(f"{col} '{text}' is not a number") from None
    if value != int(value) or value <= 0:
        raise Unmappable(f"{col} '{text}' is not a positive integer")
    return int(value)


def yes_no_cell(text: str) -> bool | None:
    """True / False for a cell starting with the word yes / no; None otherwise ("not stated", blank)."""
    m = re.match(r"(yes|no)\b", text.strip(), re.I)
    return None if m is None else m.group(1).lower() == "yes"


def derived_fields(row: dict[str, str]) -> set[str]:
    return {f.strip() for f in row["derived_fields"].split(";") if f.strip()}


def measured_tflops(row: dict[str, str]) -> float | None:
    """TFLOP/s per GPU: ``tflops_per_gpu``, else MFU (or HFU) % times the peak basis."""
    value = number_cell(row, "tflops_per_gpu")
    if value:
        return value
    pct = number_cell(row, "mfu_pct") or number_cell(row, "hfu_pct")
    basis = number_cell(row, "peak_tflops_basis")
    return pct * basis / 100 if pct and basis else None


def flops_convention(row: dict[str, str]) -> tuple[str | None, bool]:
    """(convention key, defaulted) of the row's TFLOP/s, from tflops_kind / flops_formula / framework
    (data README Sec. 4); None when it cannot be told."""
    text = f"{row['tflops_kind']} {row['flops_formula']}".lower().replace(" ", "")
    framework = row["framework"]
    if "megatron-bridge" in text:  # its MoE-aware flop_utils.py (planner.work.conventions.megatron_bridge_flops)
        return "megatron-bridge", False
    if "8*n" in text or "bigscience" in text:
        return "bigscience", False
    if "get_flops" in text or "60*s*h*l" in text:  # gpt-neox's logging (planner.work.conventions.gpt_neox_flops)
        return "gpt-neox", False
    if "eq.3" in text or "96*b" in text or "throughput_calculator" in text or "24*f" in text:
        return "megatron-eq3", False
    if "eq.7" in text or "72*b" in text:
        return "korthikanti-eq7", False
    if "attn_flops_per_seq" in text or ("modelflops" in text and re.search(r"foundry", framework, re.I)):
        return "mosaicml", False
    if "6n+12" in text or "palm" in text:
        return "palm", False
    if "modelflops" in text and FUSED_ATTENTION_FRAMEWORKS.search(framework):
        return "megatron-core", False
    if ("unspecified" in text or not text) and MEGATRON_FAMILY.search(framework):
        return "megatron-eq3", True
    return None, False


def row_recipe(framework: str, fsdp: bool, precision: str = "") -> str:
    """The framework recipe (hwprofiles/recipes) a row's framework column names: Megatron-Core / NeMo /
    Megatron-Bridge -> megatron-core; torchtitan -> torchtitan; DeepSpeed, Megatron-DeepSpeed, GPT-NeoX,
    BigScience -> deepspeed; LLM Foundry / Composer -> llm-foundry; other FSDP stacks (HF, metaseq, IBM) -> fsdp1,
    or fsdp1-amp when the precision cell names fp32 parameters under autocast (Lightning's bf16-mixed); else
    megatron-lm."""
    f = framework.lower()
    if re.search(r"megatron-core|\bnemo|megatron-bridge|mcore", f):
        return "megatron-core"
    if "torchtitan" in f:
        return "torchtitan"
    if re.search(r"deepspeed|gpt-neox|bigscience", f):
        return "deepspeed"
    if re.search(r"foundry|composer", f):
        return "llm-foundry"
    if fsdp or re.search(r"fsdp|metaseq|fairscale|accelerate", f):
        return "fsdp1-amp" if re.search(r"\bdefault\b|bf16-mixed|amp_bf16.*fp32 param", precision, re.I) else "fsdp1"
    return "megatron-lm"


def row_sharding(text: str) -> tuple[int, bool, bool, str | None]:
    """(zero stage, fsdp, distributed optimizer, default flag) from the zero_or_fsdp cell."""
    low = text.lower()
    if "offload" in low:
        raise Unmappable("CPU offload is not modelled")
    if not low:
        return 0, False, False, "zero_or_fsdp"
    if "shard_grad_op" in low:  # FSDP's ZeRO-2 strategy: parameters gathered once per step, kept through backward
        return 2, False, False, None
    if "fsdp" in low:
        return 0, True, False, None
    if "distributed optimizer" in low:
        return 0, False, True, None
    m = re.search(r"zero(?:-dp)?[- ]?(?:stage )?(\d)", low) or re.search(r"stage (\d)", low)
    if m:
        return int(m.group(1)), False, False, None
    if low.startswith("none") or re.match(r"no\b", low):  # "no", "no (DDP + ...)": plain data parallel
        return 0, False, False, None
    raise Unmappable(f"zero_or_fsdp '{text}' not understood")


def row_dp_shard(row: dict[str, str], devices_per_node: int, dp: int) -> int | None:
    """The sharding group of hybrid sharded data parallelism (FSDP HYBRID_SHARD / HSDP: shard inside a group,
    replicate across groups), None when the cell names none: the size it states ("shard group 8"), else one
    node (FSDP1 HYBRID_SHARD's default intra-node process group, torch/distributed/fsdp/_init_utils.py
    ``_init_intra_and_inter_node_groups``)."""
    text = row["zero_or_fsdp"]
    if not re.search(r"hybrid_shard|\bhsdp\b", text, re.I):
        return None
    m = re.search(r"shard group (\d+)", text, re.I)
    shard = int(m.group(1)) if m else int_cell(row, "gpus_per_node") or devices_per_node
    if dp % shard:
        raise Unmappable(f"hybrid sharding: dp({dp}) is not a multiple of the shard group ({shard})")
    return shard
