"""Rendering of a MoE step's expert-parallel communication (``estimate`` and ``plan``)."""

from __future__ import annotations

from rich.table import Table

from ..cost.moe_comm import ExpertCommBreakdown, expert_comm_breakdown
from ..pricing import Pricer
from ..specs import HardwareProfile, Layout, ModelSpec, TrainingSpec
from ..work.step import build_step
from .render import fmt_bytes, fmt_seconds


def breakdown_for(model: ModelSpec, hardware: HardwareProfile, training: TrainingSpec, layout: Layout,
                  gpus: int, step_time_s: float) -> ExpertCommBreakdown | None:
    """The expert-parallel communication breakdown of one layout (None for dense models)."""
    if not model.is_moe:
        return None
    step = build_step(model, training, layout)
    return expert_comm_breakdown(step, Pricer(hardware, training, layout, gpus), step_time_s)


def expert_comm_table(b: ExpertCommBreakdown) -> Table:
    """Where the all-to-all time goes, one row per collective of a MoE layer."""
    t = Table(title=f"expert-parallel communication, stage {b.stage} ({b.moe_layers} MoE layers; ep group: "
                    f"{b.ep_ranks_per_node} ranks/node x {b.ep_nodes} nodes) — {fmt_seconds(b.total_s)} per step, "
                    f"{b.share_of_step:.1%} of the step before overlap")
    for col in ("op", "phase", "bytes/call", "calls/step", "per call", "intra-node", "off-node", "per step"):
        t.add_column(col, justify="left" if col in ("op", "phase") else "right")
    for r in b.rows:
        t.add_row(r.name, r.phase, fmt_bytes(r.bytes_per_call), str(r.calls_per_step), fmt_seconds(r.seconds_per_call),
                  fmt_seconds(r.intra_node_s), fmt_seconds(r.off_node_s), fmt_seconds(r.seconds_per_step))
    return t


def moe_layer_table(b: ExpertCommBreakdown) -> Table:
    """Every op of one MoE layer with its bytes, FLOPs and seconds per step (before overlap)."""
    t = Table(title=f"MoE layer, stage {b.stage} ({b.moe_layers} MoE layers): ops per step before overlap"
                    + (f"; load imbalance adds {fmt_seconds(b.imbalance_s)} to the grouped GEMMs" if b.imbalance_s
                       else ""))
    for col in ("op", "kind", "phase", "bytes/call", "GFLOP/call", "per call", "per step"):
        t.add_column(col, justify="left" if col in ("op", "kind", "phase") else "right")
    for r in b.items:
        t.add_row(r.name, r.kind, r.phase, fmt_bytes(r.bytes_per_call) if r.bytes_per_call else "-",
                  f"{r.flops_per_call / 1e9:.2f}" if r.flops_per_call else "-", fmt_seconds(r.seconds_per_call),
                  fmt_seconds(r.seconds_per_step))
    return t


def moe_groups_table(b: ExpertCommBreakdown) -> Table:
    """Per-GPU states of the dense and expert sharding groups, and the stage's sharding collectives."""
    t = Table(title=f"MoE states and sharding, stage {b.stage}: dense part over dp, routed experts over edp")
    for col in ("group / collective", "axis", "ranks or phase", "params", "weights", "grads", "optimizer",
                "bytes/call", "calls/step", "per step"):
        t.add_column(col, justify="left" if col in ("group / collective", "axis", "ranks or phase") else "right")
    for g in b.groups:
        t.add_row(g.group, g.shard_axis, str(g.shard_ranks), f"{g.params / 1e9:.2f}B", fmt_bytes(g.weights_bytes),
                  fmt_bytes(g.grads_bytes), fmt_bytes(g.optimizer_bytes), "-", "-", "-")
    for r in b.sharding:
        t.add_row(r.name, r.axis, r.phase, "-", "-", "-", "-", fmt_bytes(r.bytes_per_call), str(r.calls_per_step),
                  fmt_seconds(r.seconds_per_step))
    return t
