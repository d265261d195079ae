"""Parallel layout: degrees, pipeline schedule, sharding; checks against a model and a GPU count."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..errors import SpecError
from .base import Spec
from .bounds import MAX_LAYERS, MAX_RANKS
from .model import ModelSpec
from .pipeline_layout import parse_pipeline_layout
from .training import TrainingSpec

Schedule = Literal["gpipe", "1f1b", "interleaved-1f1b", "zb-h1"]
SCHEDULES = ("gpipe", "1f1b", "interleaved-1f1b", "zb-h1")
RankOrder = Literal["tp-cp-pp-dp", "tp-cp-dp-pp"]


class Layout(Spec):
    """Degrees of parallelism. Rank order is DeviceMesh order [dp, pp, cp, tp] (tp fastest)."""

    tp: int = Field(1, gt=0, le=MAX_RANKS, description="tensor-parallel degree")
    pp: int = Field(1, gt=0, le=MAX_RANKS, description="pipeline-parallel degree (stages)")
    dp: int = Field(1, gt=0, le=MAX_RANKS, description="data-parallel degree (replicas x shards)")
    vpp: int = Field(1, gt=0, le=MAX_LAYERS, description="virtual pipeline chunks per stage (1 = not interleaved)")
    cp: int = Field(1, gt=0, le=MAX_RANKS, description="context-parallel degree: the sequence split over cp ranks in 2*cp chunks")
    cp_kind: Literal["ring", "allgather"] | None = Field(
        None, description="context-parallel K/V exchange: ring (Megatron --cp-comm-type p2p) or allgather "
        "(Llama 3, torchtitan); None = the recipe's default (megatron, deepspeed: ring; fsdp, torch-amp: allgather)"
    )
    ep: int = Field(1, gt=0, le=MAX_RANKS, description="expert-parallel degree: ranks the routed experts are split over")
    etp: int | None = Field(
        None, gt=0, description="expert tensor-parallel degree (each expert's FFN split over etp ranks); "
        "None = tp, Megatron-Core's default")
    zero_stage: int = Field(0, ge=0, le=3, description="ZeRO stage: 0 none, 1 optimizer, 2 +grads, 3 +params")
    fsdp: bool = Field(False, description="PyTorch FSDP2 sharding (parameters sharded like ZeRO-3)")
    dp_shard: int | None = Field(
        None, gt=0, description="ranks that shard states (hybrid sharding); None = all of dp"
    )
    sequence_parallel: bool = Field(False, description="Megatron sequence parallelism with tp > 1")
    schedule: Schedule = Field("1f1b", description="pipeline schedule")
    stage_layers: list[int] | None = Field(
        None, description="layers per pipeline stage when uneven; None = even split"
    )
    pipeline_layout: str | None = Field(
        None, description="Megatron --pipeline-model-parallel-layout string (E embedding, t layer, m MTP module, L "
        "loss, | between the pp * vpp virtual stages; planner.specs.pipeline_layout): the exact virtual split; "
        "stage_layers must equal its per-rank sums")
    rank_order: RankOrder = Field(
        "tp-cp-pp-dp", description="axes from fastest- to slowest-varying rank: which dims share a node / "
        "fast domain (tp-cp-pp-dp = Megatron --use-tp-pp-dp-mapping; tp-cp-dp-pp = Megatron-Core default)"
    )

    @model_validator(mode="after")
    def _check(self):
        if self.vpp > 1 and self.schedule != "interleaved-1f1b":
            raise ValueError(f"vpp({self.vpp}) > 1 needs schedule 'interleaved-1f1b', got '{self.schedule}'")
        if self.schedule == "interleaved-1f1b" and self.vpp < 2:
            raise ValueError("schedule 'interleaved-1f1b' needs vpp >= 2")
        if self.dp_shard is not None and self.dp % self.dp_shard:
            raise ValueError(f"dp({self.dp}) % dp_shard({self.dp_shard}) = {self.dp % self.dp_shard} != 0")
        if self.stage_layers is not None and len(self.stage_layers) != self.pp:
            raise ValueError(f"stage_layers has {len(self.stage_layers)} entries != pp({self.pp})")
        if self.stage_layers is not None and any(n <= 0 for n in self.stage_layers):
            raise ValueError("stage_layers entries must be > 0")
        return self

    @property
    def gpus(self) -> int:
        """Ranks the layout uses: tp * pp * dp * cp."""
        return self.tp * self.pp * self.dp * self.cp

    @property
    def shard_degree(self) -> int:
        """Ranks over which ZeRO/FSDP shards states."""
        return self.dp_shard or self.dp

    @property
    def expert_tp(self) -> int:
        """Expert tensor-parallel degree (``etp``, else ``tp``)."""
        return self.etp or self.tp

    @property
    def expert_dp(self) -> int:
        """Expert data-parallel degree: the tp*cp*dp ranks of a stage over ep*etp (Megatron-Core)."""
        return self.tp * self.cp * self.dp // (self.ep * self.expert_tp)

    @property
    def effective_zero_stage(self) -> int:
        """ZeRO stage with FSDP counted as stage 3."""
        return 3 if self.fsdp else self.zero_stage

    def describe(self) -> str:
        """Short text such as ``tp4 pp16 dp2 zero1``."""
        parts = [f"tp{self.tp}", f"pp{self.pp}"]
        if self.vpp > 1:
            parts.append(f"v{self.vpp}")
        parts.append(f"dp{self.dp}")
        if self.cp > 1:
            parts.append(f"cp{self.cp}")
        if self.ep > 1:
            parts.append(f"ep{self.ep}")
        if self.etp is not None and self.etp != self.tp:
            parts.append(f"etp{self.etp}")
        parts.append("fsdp" if self.fsdp else f"zero{self.zero_stage}")
        if self.sequence_parallel:
            parts.append("sp")
        if self.rank_order != "tp-cp-pp-dp":
            parts.append("dp<pp")  # dp ranks placed nearer than pipeline stages
        return " ".join(parts)


def stage_layer_counts(layout: Layout, model: ModelSpec) -> list[int]:
    """Layers held by each pipeline stage (even split, or ``layout.stage_layers``)."""
    if layout.stage_layers is not None:
        return list(layout.stage_layers)
    base, extra = divmod(model.num_layers, layout.pp)
    return [base + (1 if i < extra else 0) for i in range(layout.pp)]


def check_layout(layout: Layout, model: ModelSpec, training: TrainingSpec, gpus: int) -> None:
    """Raise SpecError, with the arithmetic, if ``layout`` cannot run ``model`` on ``gpus`` ranks."""
    if layout.gpus != gpus:
        raise SpecError(
            f"tp({layout.tp}) * pp({layout.pp}) * dp({layout.dp}) * cp({layout.cp}) = {layout.gpus} "
            f"!= gpus({gpus})",
            field="layout",
        )
    if model.num_heads % layout.tp:
        raise SpecError(
            f"num_heads({model.num_heads}) % tp({layout.tp}) = {model.num_heads % layout.tp} != 0",
            field="layout.tp",
        )
    if model.kv_heads % layout.tp and layout.tp % model.kv_heads:
        raise SpecError(
            f"kv_heads({model.kv_heads}) and tp({layout.tp}) must divide one another", field="layout.tp"
        )
    if model.ffn_hidden_size % layout.tp:
        raise SpecError(
            f"ffn_hidden_size({model.ffn_hidden_size}) % tp({layout.tp}) != 0", field="layout.tp"
        )
    chunks = layout.pp * layout.vpp
    if layout.stage_layers is not None:
        total = sum(layout.stage_layers)
        if total != model.num_layers:
            raise SpecError(
                f"sum(stage_layers) = {total} != num_layers({model.num_layers})", field="layout.stage_layers"
            )
        if layout.pipeline_layout is not None:
            split = parse_pipeline_layout(layout.pipeline_layout, layout.pp, layout.vpp, model.num_layers,
                                          training.mtp_layers).stage_layers
            if split != list(layout.stage_layers):
                raise SpecError(f"stage_layers {layout.stage_layers} != the pipeline layout's {split}",
                                field="layout.stage_layers")
    elif layout.pipeline_layout is not None:
        raise SpecError("pipeline_layout needs stage_layers (its per-rank layer counts)", field="layout.pipeline_layout")
    elif layout.vpp > 1 and model.num_layers % chunks:
        raise SpecError(
            f"num_layers({model.num_layers}) % (pp({layout.pp}) * vpp({layout.vpp})) = "
            f"{model.num_layers % chunks} != 0",
            field="layout.vpp",
        )
    elif layout.pp > model.num_layers:
        raise SpecError(f"pp({layout.pp}) > num_layers({model.num_layers})", field="layout.pp")
    if layout.sequence_parallel and layout.tp == 1:
        raise SpecError("sequence_parallel needs tp > 1", field="layout.sequence_parallel")
    per_replica = layout.dp * training.micro_batch_size
    if training.global_batch_size % per_replica:
        raise SpecError(
            f"global_batch({training.global_batch_size}) % (micro_batch({training.micro_batch_size}) * "
            f"dp({layout.dp})) = {training.global_batch_size % per_replica} != 0",
            field="training.global_batch_size",
        )
    if layout.cp > 1 and training.seq_length % (2 * layout.cp):
        raise SpecError(
            f"seq_length({training.seq_length}) % (2 * cp({layout.cp})) != 0", field="layout.cp"
        )
    if layout.cp > 1 and not training.flash_attention:
        raise SpecError(
            f"cp({layout.cp}) > 1 needs flash_attention (ring and all-gather context parallelism run the fused "
            "attention kernel per K/V chunk)", field="layout.cp"
        )
    if training.fp8_all_gather and (training.precision != "fp8" or layout.effective_zero_stage != 3):
        raise SpecError(f"fp8_all_gather needs precision fp8 and ZeRO-3 / FSDP (precision {training.precision}, ZeRO "
                        f"stage {layout.effective_zero_stage})", field="training.fp8_all_gather")
    if layout.ep > 1 or layout.etp is not None:
        if not model.is_moe:
            raise SpecError(f"ep({layout.ep}) / etp({layout.etp}) need a MoE model", field="layout.ep")
    if model.is_moe:
        _check_expert_layout(layout, model)
    # ZeRO/FSDP with pp > 1 is a framework rule (DeepSpeed's pipeline engine refuses ZeRO >= 2,
    # torchtitan runs FSDP2 with pipelining): planner.frameworks, applied by plan/estimate/simulate.


def _check_expert_layout(layout: Layout, model: ModelSpec) -> None:
    """Megatron-Core's expert grid rules (megatron/core/parallel_state.py, initialize_model_parallel):
    etp * ep * pp must divide the world size, i.e. ep * etp divides the tp * cp * dp ranks of a stage;
    experts split evenly over ep; the expert width over etp; sequence parallelism with tp > 1
    (Megatron-Core's MoE layer requires it when tensor and expert parallelism are combined)."""
    ep, etp = layout.ep, layout.expert_tp
    stage_ranks = layout.tp * layout.cp * layout.dp
    if model.num_experts % ep:
        raise SpecError(f"num_experts({model.num_experts}) % ep({ep}) = {model.num_experts % ep} != 0",
                        field="layout.ep")
    if stage_ranks % (ep * etp):
        raise SpecError(f"tp({layout.tp}) * cp({layout.cp}) * dp({layout.dp}) = {stage_ranks} is not a multiple of "
                        f"ep({ep}) * etp({etp}) = {ep * etp}", field="layout.ep")
    width = model.expert_ffn_hidden_size or model.ffn_hidden_size
    if width % etp:
        raise SpecError(f"expert_ffn_hidden_size({width}) % etp({etp}) != 0", field="layout.etp")
    if layout.tp > 1 and not layout.sequence_parallel:
        raise SpecError(f"a MoE model with tp({layout.tp}) > 1 needs sequence_parallel (Megatron-Core MoE)",
                        field="layout.sequence_parallel")
    if layout.effective_zero_stage == 3 and layout.dp_shard is not None and layout.dp_shard < layout.dp:
        raise SpecError(f"hybrid sharding dp_shard({layout.dp_shard}) < dp({layout.dp}) of a MoE model is not priced "
                        "(the experts' FSDP group is the whole expert-data-parallel group); allowed: dp_shard = dp",
                        field="layout.dp_shard")
    if model.num_dense_layers > stage_layer_counts(layout, model)[0]:
        raise SpecError(f"num_dense_layers({model.num_dense_layers}) > layers of the first stage "
                        f"({stage_layer_counts(layout, model)[0]}): the dense layers must sit on stage 0",
                        field="layout.stage_layers")


def micro_batches_per_step(layout: Layout, training: TrainingSpec) -> int:
    """Micro-batches each pipeline processes per step: global / (micro * dp)."""
    return training.global_batch_size // (training.micro_batch_size * layout.dp)
