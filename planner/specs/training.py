"""Training recipe: sequence, batch, precision, optimizer/precision recipe, recompute."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .base import Spec
from .bounds import MAX_GLOBAL_BATCH, MAX_MICRO_BATCH, MAX_SEQ
from .offload import OffloadSpec
from .recipe import RecipeName, RecipeSpec
from .recipe_source import canonical_recipe, recipe_named

Precision = Literal["bf16", "fp16", "fp8"]
Recompute = Literal["none", "selective", "op", "full"]


#: Recipe name -> RecipeSpec, read once per name (the property below is on the search's hot path).
_RECIPES: dict = {}


class TrainingSpec(Spec):
    """What one optimizer step processes and how. Batches are in sequences."""

    seq_length: int = Field(2048, gt=0, le=MAX_SEQ, description="tokens per sequence")
    global_batch_size: int = Field(gt=0, le=MAX_GLOBAL_BATCH, description="sequences per optimizer step")
    micro_batch_size: int = Field(1, gt=0, le=MAX_MICRO_BATCH, description="sequences per micro-batch per data-parallel rank")
    precision: Precision = Field("bf16", description="compute datatype of GEMMs")
    recipe: RecipeName = Field(
        "megatron-lm",
        description="framework recipe (hwprofiles/recipes/<name>.yaml): megatron-lm, megatron-core, deepspeed, "
        "torchtitan (FSDP2), fsdp1, torch-amp; the older values megatron and fsdp map to megatron-lm and "
        "torchtitan. Fields left unset take the recipe's defaults (dropout, overlaps, distributed optimizer)",
    )
    optimizer: Literal["adam", "sgd"] = Field("adam", description="optimizer (Adam keeps two fp32 moments)")
    recompute: Recompute = Field(
        "none", description="activation recomputation: none; selective = the attention core (Megatron, Korthikanti "
        "et al. 2022 Sec. 5); op = torchtitan's per-op selective checkpointing (a save list: every other matmul, "
        "attention, reduce-scatters; the rest recomputed; planner/work/sac.py); full = every layer from its input")
    compile: bool = Field(
        False, description="transformer blocks under torch.compile (Inductor fuses norms, activations, RoPE; "
        "specs.recipe.COMPILE_FUSES); default: the recipe's compile_default")
    fp8_all_gather: bool = Field(
        False, description="with fp8 and FSDP, Linear weights are all-gathered in fp8 (torchao "
        "enable_fsdp_float8_all_gather): 1 byte per gathered weight instead of 2")
    flash_attention: bool = Field(True, description="fused flash attention (no s^2 score matrix stored)")
    attention_kernel: str | None = Field(
        None, description="fused attention kernel generation: a key of the hardware profile's "
        "device.attention_kernel_tables (e.g. fa2); None = the profile's attention_table (its attention_kernel)")
    dropout: bool = Field(True, description="dropout layers present (their masks are kept for backward); "
                          "default: the recipe's dropout_default")
    overlap_dp_comm: bool = Field(
        True, description="bucketed data-parallel gradient reduction overlapped with the backward pass; "
        "default: the recipe's overlap_grad_reduce_default"
    )
    grad_accumulation_fusion: bool = Field(
        True, description="the weight-gradient GEMM accumulates into the held gradient buffer (Megatron "
        "--gradient-accumulation-fusion) instead of a separate add per micro-batch; default: the recipe's "
        "grad_accumulation_fused")
    overlap_param_gather: bool = Field(
        False, description="ZeRO-1/2 / distributed-optimizer parameter all-gather overlapped with the next forward "
        "(Megatron-Core --overlap-param-gather)",
    )
    tp_comm_overlap: bool = Field(
        False, description="tensor-parallel collectives overlapped with the adjacent GEMMs (Megatron-Core "
        "--tp-comm-overlap, Transformer Engine userbuffers)",
    )
    tp_overlap_style: Literal["pass", "ring-exchange"] = Field(
        "pass", description="how tp_comm_overlap hides TP collectives (planner.pricing.tp_overlap): 'pass' = under "
        "the pass's compute; 'ring-exchange' = TE userbuffers split GEMMs (all-reduces stay exposed); "
        "default: the recipe's tp_overlap_style_default",
    )
    moe_capacity_factor: float | None = Field(
        None, gt=0, description="MoE expert capacity as a multiple of the mean tokens per expert, padded to it "
        "(GShard, arXiv 2006.16668, Sec. 2.2; Megatron --moe-expert-capacity-factor with --moe-pad-expert-"
        "input-to-capacity); None = dropless")
    moe_load_imbalance: float = Field(
        1.0, ge=1.0, description="dropless MoE: max/mean tokens per expert on the busiest rank (1 = balanced)")
    moe_token_dispatcher: Literal["alltoall", "deepep", "hybridep"] = Field(
        "alltoall", description="MoE token dispatch: alltoall sends every routed copy (Megatron-Core alltoall "
        "dispatcher); deepep / hybridep (the flex dispatcher: --moe-token-dispatcher-type flex "
        "--moe-flex-dispatcher-backend deepep|hybridep) send a token once per destination node and forward it over "
        "NVLink once per destination rank (DeepSeek-V3 Sec. 3.2.2, DeepEP; HybridEP, DeepEP branch hybrid-ep)")
    moe_shared_expert_overlap: bool = Field(
        False, description="shared-expert GEMMs overlapped with the dispatch/combine all-to-all (Megatron-Core "
        "--moe-shared-expert-overlap)")
    moe_a2a_overlap: bool = Field(
        False, description="expert-parallel all-to-alls of one micro-batch overlapped with the other micro-batch's "
        "compute in the combined 1F1B schedule (Megatron-Core --overlap-moe-expert-parallel-comm with "
        "--delay-wgrad-compute; megatron/core/pipeline_parallel/combined_1f1b.py); DualPipe's overlap is priced "
        "the same way (its bubble is not)")
    mtp_layers: int = Field(
        0, ge=0, description="multi-token-prediction modules trained after the last layer (DeepSeek-V3 Sec. 2.2, "
        "D = 1; Megatron --mtp-num-layers): each an embedding-projection GEMM, one transformer layer and a second "
        "output head + loss on the last pipeline stage")
    distributed_optimizer: bool = Field(
        False, description="Megatron distributed optimizer (shards optimizer state over dp, like ZeRO-1)"
    )
    offload: OffloadSpec = Field(
        default_factory=OffloadSpec, description="model states / activations kept in host memory (planner.work.offload)"
    )

    @model_validator(mode="before")
    @classmethod
    def _recipe_defaults(cls, data):
        """Map an older recipe alias to its recipe and fill unset fields from the recipe's defaults (the
        recipe's data come from the recipe files' loader through planner.specs.recipe_source)."""
        if not isinstance(data, dict):
            return data
        name = canonical_recipe(str(data.get("recipe", "megatron-lm")))
        spec = recipe_named(name)
        out = dict(data)
        out["recipe"] = name
        for key, default in (("dropout", spec.dropout_default), ("tp_comm_overlap", spec.tp_comm_overlap_default),
                             ("tp_overlap_style", spec.tp_overlap_style_default),
                             ("overlap_param_gather", spec.overlap_param_gather_default),
                             ("overlap_dp_comm", spec.overlap_grad_reduce_default),
                             ("grad_accumulation_fusion", spec.grad_accumulation_fused),
                             ("distributed_optimizer", spec.distributed_optimizer_default),
                             ("compile", spec.compile_default)):
            if out.get(key) is None:
                out[key] = default
        return out

    @property
    def recipe_spec(self) -> RecipeSpec:
        """The framework recipe this step runs with (hwprofiles/recipes/<recipe>.yaml), its kernels fused
        by torch.compile when ``compile`` is on (RecipeSpec.compiled)."""
        key = (self.recipe, self.compile)
        spec = _RECIPES.get(key)
        if spec is None:
            spec = recipe_named(self.recipe)
            if self.compile:
                spec = spec.compiled()
            if len(_RECIPES) < 64:  # the loader's own cache size; beyond it, ask the loader each time
                _RECIPES[key] = spec
        return spec

    @model_validator(mode="after")
    def _check(self):
        if self.global_batch_size % self.micro_batch_size:
            raise ValueError(
                f"global_batch_size({self.global_batch_size}) % micro_batch_size({self.micro_batch_size}) "
                f"= {self.global_batch_size % self.micro_batch_size} != 0"
            )
        return self

    @field_validator("fp8_all_gather")
    @classmethod
    def _fp8_gather_needs_fp8(cls, value: bool, info: ValidationInfo) -> bool:
        precision = info.data.get("precision")
        if value and precision != "fp8":
            raise ValueError(f"fp8 all-gather needs precision fp8 (precision {precision})")
        return value

    @property
    def tokens_per_step(self) -> int:
        """Tokens per optimizer step."""
        return self.seq_length * self.global_batch_size
