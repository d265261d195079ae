"""Where a MoE step's all-to-all time goes: per dispatch / combine collective of the busiest stage,
its bytes, calls per step, seconds (intra-node vs off-node level) and share of the step. Sums of
``planner.pricing`` prices over ``planner.work`` ops; no formula of its own."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..pricing import Pricer
from ..work.ops import Collective
from ..work.step import StepWork


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExpertCommRow(_Result):
    """One expert-parallel collective of a MoE layer."""

    name: str = Field(description="op name (moe.dispatch, moe.combine.bwd, ...)")
    kind: str = Field(description="collective kind")
    axis: str = Field(description="group axis: ep or etp")
    phase: str = Field(description="fwd, bwd_input or recompute")
    bytes_per_call: float = Field(description="bytes each rank sends per call")
    calls_per_step: int = Field(description="MoE layers of the stage x micro-batches")
    seconds_per_call: float = Field(description="priced seconds of one call")
    intra_node_s: float = Field(description="seconds of the intra-node level of one call (all-to-all)")
    off_node_s: float = Field(description="seconds of the off-node level of one call (all-to-all)")
    seconds_per_step: float = Field(description="seconds per step on the stage's critical path")


class ExpertCommBreakdown(_Result):
    """All-to-all and etp traffic of one step on the stage with the most MoE layers."""

    stage: int = Field(description="pipeline stage shown")
    moe_layers: int = Field(description="MoE layers on that stage")
    ep_ranks_per_node: int = Field(description="members of an ep group inside one node")
    ep_nodes: int = Field(description="nodes an ep group spans")
    rows: list[ExpertCommRow] = Field(description="one row per collective of a MoE layer")
    total_s: float = Field(description="seconds per step of all rows (before any overlap)")
    share_of_step: float = Field(description="total_s / step time")


def expert_comm_breakdown(step: StepWork, pricer: Pricer, step_time_s: float) -> ExpertCommBreakdown | None:
    """The breakdown, or None when the model has no expert-parallel communication."""
    if not step.model.is_moe:
        return None
    stage = max(step.stages, key=lambda s: s.layers)
    block = stage.layer
    ops = [op for op in block.forward + block.backward_input + block.recompute
           if isinstance(op, Collective) and op.axis in ("ep", "etp")]
    if not ops:
        return None
    calls = stage.layers * step.micro_batches
    group = pricer.groups["ep"]
    rows = []
    for op in ops:
        t = pricer.collective_time(op)
        intra, off = pricer.a2a_parts(op) if op.kind == "all-to-all" else (t, 0.0)
        rows.append(ExpertCommRow(name=op.name, kind=op.kind, axis=op.axis, phase=op.phase,
                                  bytes_per_call=op.bytes, calls_per_step=calls, seconds_per_call=t,
                                  intra_node_s=intra, off_node_s=off, seconds_per_step=t * calls))
    total = sum(r.seconds_per_step for r in rows)
    return ExpertCommBreakdown(stage=stage.index, moe_layers=stage.layers, ep_ranks_per_node=group.ranks_per_node,
                               ep_nodes=group.nodes, rows=rows, total_s=total, share_of_step=total / step_time_s)
