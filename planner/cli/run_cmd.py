"""``paraplan run PLAN``: a whole training run priced stage by stage, with checkpoints and failures."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from .app import JSON_OPTION, app, console, print_json
from .budget_render import fmt_count
from .render import fmt_seconds
from .run_render import fmt_days, reliability_rows

SCHED_SHORT = {"gpipe": "gpipe", "1f1b": "1f1b", "interleaved-1f1b": "i1f1b", "zb-h1": "zb-h1"}


def stages_table(result) -> Table:
    """One row per stage and a total row."""
    t = Table(title=f"{result.name}", show_edge=False, pad_edge=False)
    for col in ("stage", "tokens", "seq", "batch", "GPUs", "layout", "step", "MFU", "training", "wall",
                "GPU-h", "goodput"):
        t.add_column(col, justify="left" if col in ("stage", "layout") else "right")
    for s in result.stages:
        lay, sched = s.layout.rsplit(" ", 1)
        layout = f"{lay} {SCHED_SHORT.get(sched, sched)}" + (" (planned)" if s.planned else "") + ("" if s.fits else " !mem")
        t.add_row(s.name, fmt_count(s.tokens), f"{s.seq_length:,}", fmt_count(s.tokens_per_step), f"{s.gpus:,}",
                  layout, fmt_seconds(s.step_time_s), f"{s.mfu:.1%}", fmt_days(s.useful_days), fmt_days(s.wall_days),
                  fmt_count(s.gpu_hours), f"{s.goodput:.1%}")
    tot = result.totals
    t.add_section()
    t.add_row("total", fmt_count(tot.tokens), "", "", "", "", "", "", fmt_days(tot.useful_days), fmt_days(tot.wall_days),
              fmt_count(tot.gpu_hours), f"{tot.goodput:.1%}", style="bold")
    return t


def totals_table(result) -> Table:
    """Run totals: days, GPU-hours, energy, cost and where the days went."""
    tot = result.totals
    t = Table(title="The whole run", show_header=False, show_edge=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    lost = tot.wall_days - tot.useful_days
    t.add_row("wall time", f"{fmt_days(tot.wall_days)} ({fmt_days(tot.useful_days)} training, {fmt_days(lost)} lost: "
              f"failures {fmt_days(tot.failure_days)}, checkpoints {fmt_days(tot.checkpoint_stall_days)}, planned "
              f"{fmt_days(tot.planned_days)})")
    t.add_row("goodput", f"{tot.goodput:.1%} (effective training time)")
    t.add_row("GPU-hours", f"{fmt_count(tot.gpu_hours)} ({fmt_count(tot.gpu_hours_useful)} without failures and "
              "checkpoints)")
    energy = "unknown (no power figure)" if tot.energy_mwh is None else (
        f"{tot.energy_mwh:,.0f} MWh ({tot.power_per_gpu_w:g} W/GPU x PUE {tot.pue:g})")
    t.add_row("energy", energy)
    t.add_row("cost", f"${fmt_count(tot.cost_usd)} (${tot.price_per_gpu_hour:.2f}/GPU-hour)")
    main = max(result.stages, key=lambda s: s.wall_days)
    t.add_row("", Text(f"checkpoints and failures of the longest stage, '{main.name}':", style="dim"))
    reliability_rows(t, main.reliability, main.gpus)
    return t


def reference_table(ref) -> Table:
    """paraplan beside the published figures."""
    t = Table(title="paraplan vs published", show_edge=False)
    for col in ("figure", "published", "paraplan", "difference"):
        t.add_column(col, justify="left" if col == "figure" else "right")
    if ref.gpu_hours is not None:
        t.add_row("GPU-hours", fmt_count(ref.gpu_hours), fmt_count(ref.predicted_gpu_hours), f"{ref.error:+.1%}")
    if ref.goodput_min is not None:
        t.add_row("goodput", f"> {ref.goodput_min:.0%}", f"{ref.goodput:.1%}",
                  "in band" if ref.goodput_in_band else "outside")
    return t


def levers_table(result) -> Table:
    """The levers on days, largest first."""
    t = Table(title="What saves days (each 2x better, the rest kept)", show_edge=False)
    for col in ("lever", "wall time", "saves"):
        t.add_column(col, justify="left" if col == "lever" else "right")
    for lv in result.levers:
        t.add_row(lv.label, fmt_days(lv.wall_days), f"{fmt_days(lv.days_saved)} ({lv.share:.1%})")
    return t


@app.command()
def run(
    plan: Annotated[str, typer.Argument(help="Run plan YAML/JSON, or a shipped plan's name (llama3-405b).")],
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="KEY=VALUE on the plan: failure_rate=x2, checkpoint=sync, checkpoint_interval=600, "
        "reschedule=300, storage.bandwidth=x2, stages.2.tokens=3T, stages.2.layout.tp=4 (repeatable).")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Price a whole training run: stages, batch ramp, checkpoints, failures and restarts, in days and GPU-hours."""
    from hwprofiles import load_hardware

    from ..run.engine import price_run
    from ..run.keys import apply_run_settings
    from ..run.loader import load_run_plan

    spec = load_run_plan(plan)
    settings = list(set_ or [])
    if settings:
        spec = apply_run_settings(spec, settings, load_hardware(spec.hardware, spec.calibration))
    result = price_run(spec, settings)
    if json_out:
        print_json(result)
        return
    console.print(stages_table(result))
    console.print()
    console.print(totals_table(result))
    console.print()
    if result.reference is not None:
        console.print(reference_table(result.reference))
        console.print(Text(result.reference.source, style="dim"))
        console.print()
    console.print(levers_table(result))
    console.print(Text(result.headline, style="bold"))
    console.print(Text(f"Step bottleneck of the longest stage — {result.step_bottleneck}"))
    if settings:
        console.print(Text("settings: " + ", ".join(settings), style="yellow"))
    console.print()
    for note in result.assumptions:
        console.print(Text("• " + note, style="dim"))
