"""``--tokens`` and friends for ``plan`` and ``estimate``: the run budget options and its table."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..cost.budget import RunBudget, run_budget
from ..cost.result import Estimate
from ..specs import HardwareProfile
from ..units import parse_count

TokensOpt = Annotated[Optional[str], typer.Option(
    "--tokens", help="Tokens to train (15T, 2.5B, 1e12): prints days, GPU-hours, energy and cost.")]
PriceOpt = Annotated[Optional[float], typer.Option(
    "--price-per-gpu-hour", help="USD per GPU-hour for --tokens (default 2.00, a placeholder).")]
PowerOpt = Annotated[Optional[float], typer.Option(
    "--power-per-gpu", help="Watts per GPU for --tokens (default: the profile's device.power_limit_w, else device.tdp_w).")]
OffloadOpt = Annotated[Optional[str], typer.Option(
    "--offload", help="CPU offload: none, off:opt, off:opt+grad, off:opt+grad+param, off:opt+grad+param+act.")]
PueOpt = Annotated[Optional[float], typer.Option(
    "--pue", help="Power usage effectiveness for --tokens (default 1.1).")]


def offload_from_flag(text: str | None):
    """The OffloadSpec named by ``--offload`` (None when not given); SpecError listing the names."""
    from ..errors import SpecError
    from ..specs.offload import OffloadSpec
    from ..work.offload import OFFLOAD_LEVELS

    if text is None:
        return None
    names = {"none": OffloadSpec(), **{lv.describe(): lv for lv in OFFLOAD_LEVELS}}
    if text not in names:
        raise SpecError(f"'{text}' is not one of: {', '.join(names)}", field="--offload")
    return names[text]


def budget_for(est: Estimate, hardware: HardwareProfile, tokens: str | None, price: float | None,
               power: float | None, pue: float | None) -> RunBudget | None:
    """The run budget when ``--tokens`` was given, else None (bad values raise SpecError, exit 2)."""
    if tokens is None:
        return None
    return run_budget(est, parse_count(tokens, field="--tokens"), hardware,
                      price_per_gpu_hour=price, power_per_gpu_w=power, pue=pue)


def fmt_count(x: float) -> str:
    """1.5e13 -> '15.0T', 3.08e7 -> '30.8M'."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def budget_table(b: RunBudget) -> Table:
    """The whole-run figures, one row each, with the assumptions below."""
    t = Table(title=f"Training {fmt_count(b.tokens)} tokens", show_header=False, show_edge=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("steps", f"{b.steps:,} x {b.tokens_per_step:,} tokens at {b.step_time_s:.3g} s")
    t.add_row("wall time", f"{b.days:,.1f} days")
    t.add_row("GPU-hours", f"{fmt_count(b.gpu_hours)} ({b.gpus:,} GPUs)")
    if b.energy_mwh is None:
        t.add_row("energy", "unknown (no power figure)")
    else:
        t.add_row("energy", f"{b.energy_mwh:,.0f} MWh ({b.power_per_gpu_w:g} W/GPU x PUE {b.pue:g})")
    t.add_row("cost", f"${fmt_count(b.cost_usd)} (${b.price_per_gpu_hour:.2f}/GPU-hour)")
    for note in b.assumptions:
        t.add_row("", f"[dim]{note}[/]")
    return t


def with_budget(payload: dict[str, Any], budget: RunBudget | None) -> dict[str, Any]:
    """``payload`` with a ``budget`` key when one was computed."""
    if budget is not None:
        payload["budget"] = budget.model_dump(mode="json")
    return payload
