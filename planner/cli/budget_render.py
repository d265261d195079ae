"""``--tokens`` and friends for ``plan`` and ``estimate``: the run budget options and its table."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..cost.budget import RunBudget, run_budget
from ..cost.result import Estimate
from ..errors import SpecError
from ..run.failures import stage_reliability
from ..run.fleets import FLEETS
from ..specs import HardwareProfile
from ..specs.run import CheckpointSpec, FailureSpec
from ..units import parse_count, parse_time
from .run_render import fmt_days, reliability_rows

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
FailureRateOpt = Annotated[Optional[str], typer.Option(
    "--failure-rate", help="Interruptions per GPU-hour for --tokens (a number, or a fleet: llama3, meta-rsc1, "
    "meta-rsc2): prints goodput, the optimal checkpoint interval and the days lost.")]
CheckpointOpt = Annotated[Optional[str], typer.Option(
    "--checkpoint", help="sync, async or none, for --tokens with failures (default async).")]
CheckpointIntervalOpt = Annotated[Optional[str], typer.Option(
    "--checkpoint-interval", help="Training time between checkpoints (600, 600s); default: the optimum (Young/Daly).")]


def offload_from_flag(text: str | None):
    """The OffloadSpec named by ``--offload`` (None when not given); SpecError listing the names."""
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


def with_budget(payload: dict[str, Any], budget: RunBudget | None, reliability=None) -> dict[str, Any]:
    """``payload`` with a ``budget`` key when one was computed (and ``reliability`` with failures)."""
    if budget is not None:
        payload["budget"] = budget.model_dump(mode="json")
    if reliability is not None:
        payload["reliability"] = reliability.model_dump(mode="json")
    return payload


def reliability_options(tokens: str | None, failure_rate: str | None, checkpoint: str | None,
                        interval: str | None) -> tuple[FailureSpec, CheckpointSpec] | None:
    """The failure model and checkpointing of ``--failure-rate`` / ``--checkpoint`` /
    ``--checkpoint-interval`` (None when none is given), checked before any work; they need --tokens.
    A fleet name sets the planned interruption rate too (a bare number: none planned)."""
    given = [(o, v) for o, v in (("--failure-rate", failure_rate), ("--checkpoint", checkpoint),
                                 ("--checkpoint-interval", interval)) if v is not None]
    if not given:
        return None
    if tokens is None:
        raise SpecError("prices the whole run: give --tokens too", field=given[0][0])
    modes = ("sync", "async", "none")
    if checkpoint is not None and checkpoint not in modes:
        raise SpecError(f"'{checkpoint}' is not one of: {', '.join(modes)}", field="--checkpoint")
    rate = failure_rate if failure_rate is not None else "llama3"
    fleet = str(rate).strip().lower()
    if fleet not in FLEETS:
        try:
            rate = float(fleet)
        except ValueError:
            raise SpecError(f"'{failure_rate}' is neither a number per GPU-hour nor one of: {', '.join(FLEETS)}",
                            field="--failure-rate") from None
        if not rate >= 0 or rate == float("inf"):
            raise SpecError(f"{failure_rate} must be a finite number >= 0", field="--failure-rate")
    seconds = None if interval is None else parse_time(interval, field="--checkpoint-interval")
    if seconds is not None and not 0 < seconds < float("inf"):
        raise SpecError(f"{interval} must be > 0", field="--checkpoint-interval")
    failures = FailureSpec(rate_per_gpu_hour=fleet if fleet in FLEETS else rate,
                           planned_rate_per_gpu_hour=fleet if fleet in FLEETS else 0.0)
    return failures, CheckpointSpec(mode=checkpoint or "async", interval_s=seconds)


def check_reliability_hardware(hardware: HardwareProfile, options: tuple[FailureSpec, CheckpointSpec] | None) -> None:
    """SpecError before any work when checkpoints are asked for on a profile that cannot price them."""
    if options is None or options[1].mode == "none":
        return
    if hardware.storage is None or hardware.device.host_link_gbps is None:
        missing = "a storage tier (profile section 'storage')" if hardware.storage is None else "device.host_link_gbps"
        raise SpecError(f"{hardware.name} has no {missing}: checkpoint time cannot be priced (use --checkpoint none, "
                        "or paraplan run with a plan that sets storage)", field="--checkpoint")


def reliability_for(est: Estimate, model, hardware: HardwareProfile, budget: RunBudget | None,
                    options: tuple[FailureSpec, CheckpointSpec] | None):
    """The run's checkpoints and failures (planner.run.failures) for ``reliability_options``, else None."""
    if options is None or budget is None:
        return None
    try:
        return stage_reliability(est, model, hardware, *options, budget.wall_time_s)
    except SpecError as exc:
        field = {"failures.rate_per_gpu_hour": "--failure-rate"}.get(exc.field, exc.field)
        raise SpecError(str(exc).removeprefix(f"{exc.field}: "), field=field) from None


def reliability_table(r, b: RunBudget) -> Table:
    """The run with failures and checkpoints: goodput, the optimal interval, the days lost."""
    t = Table(title="With failures, restarts and checkpoints", show_header=False, show_edge=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    day = 86_400.0
    t.add_row("goodput", f"{r.goodput:.1%}: {fmt_days(r.wall_s / day)} wall time for {fmt_days(r.useful_s / day)} "
              f"of training, {fmt_count(b.gpus * r.wall_s / 3600)} GPU-hours")
    t.add_row("days lost", f"failures {fmt_days(r.failure_loss_s / day)}, checkpoints "
              f"{fmt_days(r.checkpoint_stall_s / day)}, planned interruptions {fmt_days(r.planned_loss_s / day)}")
    reliability_rows(t, r, b.gpus)
    for note in r.notes:
        t.add_row("", f"[dim]{note}[/]")
    return t
