"""Training recipe: sequence, batch, precision, optimizer/precision recipe, recompute."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import Spec

Precision = Literal["bf16", "fp16", "fp8"]
Recipe = Literal["megatron", "deepspeed", "torch-amp", "fsdp"]
Recompute = Literal["none", "selective", "full"]


class TrainingSpec(Spec):
    """What one optimizer step processes and how. Batches are in sequences."""

    seq_length: int = Field(2048, gt=0, description="tokens per sequence")
    global_batch_size: int = Field(gt=0, description="sequences per optimizer step")
    micro_batch_size: int = Field(1, gt=0, description="sequences per micro-batch per data-parallel rank")
    precision: Precision = Field("bf16", description="compute datatype of GEMMs")
    recipe: Recipe = Field(
        "megatron",
        description="optimizer/precision recipe: megatron (fp32 master + fp32 grads), deepspeed (ZeRO, "
        "16-bit grads), torch-amp (fp32 params, autocast), fsdp (FSDP2 mixed precision)",
    )
    optimizer: Literal["adam", "sgd"] = Field("adam", description="optimizer (Adam keeps two fp32 moments)")
    recompute: Recompute = Field("none", description="activation recomputation")
    flash_attention: bool = Field(True, description="fused flash attention (no s^2 score matrix stored)")
    dropout: bool = Field(True, description="dropout layers present (their masks are kept for backward)")
    overlap_dp_comm: bool = Field(
        True, description="bucketed data-parallel gradient reduction overlapped with the backward pass"
    )
    overlap_param_gather: bool = Field(
        False, description="ZeRO-1/2 / distributed-optimizer parameter all-gather overlapped with the next forward "
        "(Megatron-Core --overlap-param-gather)",
    )
    tp_comm_overlap: bool = Field(
        False, description="tensor-parallel collectives overlapped with the adjacent GEMMs (Megatron-Core "
        "--tp-comm-overlap, Transformer Engine userbuffers)",
    )
    moe_capacity_factor: float | None = Field(
        None, gt=0, description="MoE expert capacity as a multiple of the mean tokens per expert, padded to it "
        "(GShard, arXiv 2006.16668, Sec. 2.2; Megatron --moe-expert-capacity-factor with --moe-pad-expert-"
        "input-to-capacity); None = dropless")
    moe_load_imbalance: float = Field(
        1.0, ge=1.0, description="dropless MoE: max/mean tokens per expert on the busiest rank (1 = balanced)")
    moe_token_dispatcher: Literal["alltoall", "deepep"] = Field(
        "alltoall", description="MoE token dispatch: alltoall sends every routed copy (Megatron-Core alltoall "
        "dispatcher); deepep sends a token once per destination node and forwards it over NVLink (DeepSeek-V3 "
        "Sec. 3.2.2, DeepEP; Megatron --moe-token-dispatcher-type flex --moe-enable-deepep)")
    moe_shared_expert_overlap: bool = Field(
        False, description="shared-expert GEMMs overlapped with the dispatch/combine all-to-all (Megatron-Core "
        "--moe-shared-expert-overlap)")
    distributed_optimizer: bool = Field(
        False, description="Megatron distributed optimizer (shards optimizer state over dp, like ZeRO-1)"
    )

    @model_validator(mode="after")
    def _check(self):
        if self.global_batch_size % self.micro_batch_size:
            raise ValueError(
                f"global_batch_size({self.global_batch_size}) % micro_batch_size({self.micro_batch_size}) "
                f"= {self.global_batch_size % self.micro_batch_size} != 0"
            )
        return self

    @property
    def tokens_per_step(self) -> int:
        """Tokens per optimizer step."""
        return self.seq_length * self.global_batch_size
