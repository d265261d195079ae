"""Where a MoE step's time goes, on the stage with the most MoE layers: every op of one MoE layer (router,
token-count exchange and host sync, permutation, the grouped expert GEMMs and their activation, the
dispatch / combine all-to-alls split into their intra-node and off-node levels, expert-TP collectives,
shared experts, un-permutation) with its bytes, FLOPs, calls per step and seconds, plus what the load
imbalance adds to the grouped GEMMs. Sums of ``planner.pricing`` prices over ``planner.work`` ops; no
formula of its own (the imbalance is the same grouped GEMMs priced at the balanced row count)."""

from __future__ import annotations

import dataclasses

from pydantic import BaseModel, ConfigDict, Field

from ..pricing import Pricer
from ..work.context import shard_group_size
from ..work.expert_states import expert_state_bytes
from ..work.moe import moe_dims
from ..work.ops import Collective, ExecutedGemm, HostSync, MemoryOp
from ..work.step import StepWork


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExpertCommRow(_Result):
    """One op of a MoE layer (the name keeps its history: first only the expert-parallel collectives)."""

    name: str = Field(description="op name (router, moe.permute, moe.sort_chunks, experts.fc1, moe.dispatch, "
                      "moe.combine.bwd, ...)")
    kind: str = Field(description="router, count-exchange, host-sync, permute, grouped-gemm, expert-activation, "
                      "all-to-all, etp collective (all-gather / reduce-scatter), shared-expert")
    axis: str = Field(description="group axis of a collective (ep or etp), '' for device work")
    phase: str = Field(description="fwd, bwd_input, bwd_weight or recompute")
    bytes_per_call: float = Field(description="bytes moved per call: HBM bytes of a memory-bound kernel, bytes each "
                                  "rank sends for a collective, 0 for a GEMM")
    flops_per_call: float = Field(0.0, description="model FLOPs per call (GEMMs)")
    calls_per_step: int = Field(description="MoE layers of the stage x micro-batches")
    seconds_per_call: float = Field(description="priced seconds of one call")
    intra_node_s: float = Field(description="seconds of the intra-node level of one call (all-to-all)")
    off_node_s: float = Field(description="seconds of the off-node level of one call (all-to-all)")
    seconds_per_step: float = Field(description="seconds per step on the stage (before any overlap)")


class StateGroup(_Result):
    """Model states of one sharding group of a MoE stage: the dense part or the routed experts."""

    group: str = Field(description="dense (attention, router, shared experts, embeddings) or experts (routed)")
    shard_axis: str = Field(description="the axis its states are sharded / its gradients reduced over (dp, edp)")
    shard_ranks: int = Field(description="ranks of that group")
    params: float = Field(description="parameters one GPU holds before sharding")
    weights_bytes: float = Field(description="weight bytes one GPU holds")
    grads_bytes: float = Field(description="gradient bytes one GPU holds")
    optimizer_bytes: float = Field(description="optimizer-state bytes one GPU holds")


class ExpertCommBreakdown(_Result):
    """A MoE layer's ops on the stage with the most MoE layers, one step."""

    stage: int = Field(description="pipeline stage shown")
    moe_layers: int = Field(description="MoE layers on that stage")
    ep_ranks_per_node: int = Field(description="members of an ep group inside one node")
    ep_nodes: int = Field(description="nodes an ep group spans")
    rows: list[ExpertCommRow] = Field(description="the expert-parallel collectives (ep / etp axes), one row each")
    items: list[ExpertCommRow] = Field(default_factory=list, description="every op of one MoE layer, one row each")
    imbalance_s: float = Field(0.0, description="seconds per step the load imbalance (or capacity padding) adds "
                               "to the grouped expert GEMMs over a balanced load")
    groups: list[StateGroup] = Field(default_factory=list, description="states of the dense and expert groups")
    sharding: list[ExpertCommRow] = Field(default_factory=list, description="the stage's data-parallel / ZeRO / "
                                          "FSDP collectives of both groups (per micro-batch and per step)")
    total_s: float = Field(description="seconds per step of the collectives in rows (before any overlap)")
    share_of_step: float = Field(description="total_s / step time")


def _kind(op) -> str:
    name = op.name.split(".")[0]
    if isinstance(op, HostSync):
        return "host-sync"
    if isinstance(op, Collective):
        return "count-exchange" if op.name.startswith("moe.split_sizes") else (
            "all-to-all" if op.kind == "all-to-all" else f"etp {op.kind}")
    if name == "router":
        return "router"
    if name == "shared":
        return "shared-expert"
    if op.name.startswith(("moe.permute", "moe.unpermute", "moe.sort_chunks", "moe.unsort_chunks")):
        return "permute"
    if isinstance(op, ExecutedGemm):
        return "grouped-gemm"
    return "expert-activation" if name == "experts" else name


def _is_moe_op(op) -> bool:
    return op.name.split(".")[0] in ("router", "moe", "experts", "shared")


def _row(op, pricer: Pricer, calls: int) -> ExpertCommRow:
    t = pricer.op_time(op)
    intra, off = (pricer.a2a_parts(op) if isinstance(op, Collective) and op.kind == "all-to-all"
                  else (t, 0.0) if isinstance(op, Collective) else (0.0, 0.0))
    nbytes = op.bytes if isinstance(op, Collective) else (op.bytes_moved if isinstance(op, MemoryOp) else 0.0)
    return ExpertCommRow(name=op.name, kind=_kind(op), axis=op.axis if isinstance(op, Collective) else "",
                         phase=op.phase, bytes_per_call=nbytes, flops_per_call=op.flops, calls_per_step=calls,
                         seconds_per_call=t, intra_node_s=intra, off_node_s=off, seconds_per_step=t * calls)


def _balanced(op: ExecutedGemm, rows: int) -> ExecutedGemm:
    """The grouped GEMM at ``rows`` executed rows per expert (its row dimension is m, or k for wgrad)."""
    g = op.gemm
    field = "k" if g.name.endswith(".wgrad") else "m"
    return dataclasses.replace(op, gemm=dataclasses.replace(g, **{field: rows}))


def expert_comm_breakdown(step: StepWork, pricer: Pricer, step_time_s: float) -> ExpertCommBreakdown | None:
    """The breakdown, or None for a dense model or a stage without MoE layers."""
    if not step.model.is_moe:
        return None
    stage = max(step.stages, key=lambda s: s.layers)
    block = stage.layer
    ops = [op for op in block.forward + block.backward_input + block.backward_weight + block.recompute
           if _is_moe_op(op)]
    if not ops:
        return None
    calls = stage.layers * step.micro_batches
    items = [_row(op, pricer, calls) for op in ops]
    rows = [r for r, op in zip(items, ops) if isinstance(op, Collective) and op.axis in ("ep", "etp")]
    load = step.training.moe_capacity_factor or step.training.moe_load_imbalance
    imbalance = 0.0
    if load != 1:
        mean = max(1, round(moe_dims(step.model, step.training, step.layout).tokens_per_expert))
        for op in ops:
            if isinstance(op, ExecutedGemm):
                imbalance += (pricer.op_time(op) - pricer.op_time(_balanced(op, mean))) * calls
    items.append(ExpertCommRow(name="moe.imbalance", kind="imbalance", axis="", phase="all", bytes_per_call=0.0,
                               calls_per_step=calls, seconds_per_call=imbalance / calls if calls else 0.0,
                               intra_node_s=0.0, off_node_s=0.0, seconds_per_step=imbalance))
    group = pricer.groups["ep"]
    total = sum(r.seconds_per_step for r in rows)
    sharding = [_row(c, pricer, step.micro_batches) for c in stage.per_microbatch_comm]
    sharding += [_row(c, pricer, 1) for c in stage.per_step_comm]
    return ExpertCommBreakdown(stage=stage.index, moe_layers=stage.layers, ep_ranks_per_node=group.ranks_per_node,
                               ep_nodes=group.nodes, rows=rows, items=items, imbalance_s=imbalance, total_s=total,
                               share_of_step=total / step_time_s, groups=_groups(stage, step), sharding=sharding)


def _groups(stage, step: StepWork) -> list[StateGroup]:
    """The dense and expert state groups of ``stage`` (planner.work.memory / expert_states bytes)."""
    lay, trn = step.layout, step.training
    expert = expert_state_bytes(stage.expert_params, trn, lay)
    dense = (stage.weights_bytes - expert.weights, stage.grads_bytes - expert.grads,
             stage.optimizer_bytes - expert.optimizer)
    return [StateGroup(group="dense", shard_axis="dp", shard_ranks=shard_group_size(lay), params=stage.params,
                       weights_bytes=dense[0], grads_bytes=dense[1], optimizer_bytes=dense[2]),
            StateGroup(group="experts", shard_axis="edp", shard_ranks=lay.expert_dp, params=stage.expert_params,
                       weights_bytes=expert.weights, grads_bytes=expert.grads, optimizer_bytes=expert.optimizer)]


__all__ = ["ExpertCommBreakdown", "ExpertCommRow", "StateGroup", "expert_comm_breakdown"]
