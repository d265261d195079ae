"""Rendering shared by ``paraplan run`` and ``--tokens`` with ``--failure-rate``: checkpoints and failures."""

from __future__ import annotations

from rich.table import Table

from .render import fmt_seconds


def fmt_days(x: float) -> str:
    """Days as '12.3 days', under a day as '5.2 h'; 'never' when restarts outpace progress (over a
    million days: without checkpoints each failure restarts the stage from its beginning)."""
    if x > 1e6:
        return "never"
    return f"{x:,.1f} days" if x >= 1 else f"{x * 24:,.1f} h"


def reliability_rows(t: Table, r, gpus: int) -> None:
    """The checkpoint and failure figures of one stage (a StageReliability) as rows of ``t``."""
    gb = 1e9
    t.add_row("checkpoint", f"{r.checkpoint_bytes / 1e12:,.2f} TB ({r.held_bytes_per_rank / gb:,.2f} GB held per "
              f"rank), {r.mode}: write {fmt_seconds(r.write_s)} ({r.write_bound}-bound), load {fmt_seconds(r.load_s)}, "
              f"copy to host {fmt_seconds(r.stage_s)}; training waits {fmt_seconds(r.blocked_s)} per checkpoint")
    if r.mode != "none":
        t.add_row("interval", f"every {fmt_seconds(r.interval_s)} of training (optimal, Daly 2006: "
                  f"{fmt_seconds(r.optimal_interval_s)}; Young 1974: {fmt_seconds(r.young_interval_s)})")
    t.add_row("failures", f"{r.failure_rate_per_gpu_hour:.3g} per GPU-hour x {gpus:,} GPUs: one every "
              f"{r.mtbf_h:,.2f} h; {r.failures:,.0f} unexpected + {r.planned:,.0f} planned interruptions")
    t.add_row("restart", f"{fmt_seconds(r.restart_s)} = detection {fmt_seconds(r.detect_s)} + rescheduling "
              f"{fmt_seconds(r.reschedule_s)} + load {fmt_seconds(r.load_s)} + warm-up {fmt_seconds(r.warmup_s)}; "
              f"work redone per failure {fmt_seconds(r.lost_work_per_failure_s)}")
