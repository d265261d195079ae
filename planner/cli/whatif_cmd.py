"""``paraplan whatif``, ``paraplan sweep``, ``paraplan sensitivity``: what-if analysis in the terminal.

BASE is a scenario JSON file (``plan --export json`` or ``whatif --save``) or the same flags as
``estimate``; flags given with a BASE file override it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SpecError
from ..outputs import PLOT_SUFFIXES, atomic_output, check_output, require_plotting
from ..whatif import (
    compare,
    parse_vary,
    search_replanner,
    split_variant,
)
from ..whatif import (
    sensitivity as run_sensitivity,
)
from ..whatif import (
    sweep as run_sweep,
)
from ..whatif.keys import canonical_key
from . import common as c
from .app import JSON_OPTION, app, console, print_json, write_atomic
from .progress import job_progress
from .whatif_render import render_comparison, render_sensitivity, render_sweep, sweep_csv, sweep_png

#: The smallest --step of sensitivity: below it a ±step change is lost in the rounding of integer fields
#: and of the estimate itself.
MIN_STEP = 1e-3
#: Grid points of one sweep at most (each is an estimate, a simulation or, with --replan, a search).
MAX_SWEEP_POINTS = 10_000

BaseArg = Annotated[Optional[str], typer.Argument(help="Scenario JSON file (else give --model/--hardware/...).")]
EngineOpt = Annotated[str, typer.Option("--engine", help="analytic or simulate.")]


def scenario_from(base: str | None, **flags):
    """Scenario from a BASE file and/or estimate-style flags."""
    if base and flags.get("layout_file"):
        raise SpecError("give the scenario either as BASE or as --layout, not both", field="--layout")
    if base:
        flags["layout_file"] = base
    return c.build_scenario(**flags)


@app.command()
@c.scenario_options()
def whatif(
    base: BaseArg = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE; one variant per --set "
                    "(join several keys in one variant with spaces), e.g. hardware.nic_bandwidth=x2.")] = None,
    save: Annotated[Optional[str], typer.Option("--save", help="Write the variant scenario(s) as JSON "
                    "(FILE for one, FILE-1.json, FILE-2.json ... for several; the base when no --set).")] = None,
    list_keys: Annotated[bool, typer.Option("--list-keys", help="List every KEY that --set and sweep's "
                         "--vary accept, and exit.")] = False,
    engine: EngineOpt = "analytic", json_out: bool = JSON_OPTION, scenario_flags: dict | None = None,
) -> None:
    """Compare a base scenario with variants: step time, tokens/s, MFU, memory, breakdown, bottleneck."""
    if list_keys:
        _print_keys(json_out)
        return
    check_output(save, "--save")
    scenario = scenario_from(base, **scenario_flags)
    variants = [split_variant(s) for s in (set_ or [])]
    result = compare(scenario, variants, engine)
    if save:
        _save_variants(save, scenario, variants)
    if json_out:
        print_json(result)
    else:
        console.print(render_comparison(result))


def _print_keys(json_out: bool) -> None:
    """Every key --set / --vary accept, grouped: short names, aliases, spec fields."""
    from ..whatif import ALIASES, FIELD_ALIASES, valid_keys
    from ..whatif.keys import SHORT_NAMES

    groups = {
        "short names": [f"{k} = {v}" for k, v in sorted(SHORT_NAMES.items())],
        "aliases": sorted(ALIASES) + [f"{k} = {v}" for k, v in sorted(FIELD_ALIASES.items())],
        "spec fields": [k for k in valid_keys() if k not in SHORT_NAMES and k not in ALIASES
                        and k not in FIELD_ALIASES],
    }
    if json_out:
        console.print_json(json.dumps({k: [x.split(" = ")[0] for x in v] for k, v in groups.items()}))
        return
    for title, keys in groups.items():
        console.print(f"[bold]{title}[/]")
        for k in keys:
            console.print(f"  {k}", highlight=False)
    console.print("values take units (400Gb/s, 80GiB, 5us) or a multiplier of the current value (x2)",
                  highlight=False)


def _save_variants(path: str, base, variants: list[list[str]]) -> None:
    from ..whatif import apply_settings

    scenarios = [apply_settings(base, v)[0] for v in variants] or [base]
    target = Path(path)
    for i, s in enumerate(scenarios, 1):
        out = target if len(scenarios) == 1 else target.with_name(f"{target.stem}-{i}{target.suffix or '.json'}")
        write_atomic(out, json.dumps(s.to_file_dict(), indent=2) + "\n")
        console.print(f"saved {out}", highlight=False)


@app.command()
@c.scenario_options(exclude=("dp",))
def sweep(
    base: BaseArg = None,
    vary: Annotated[Optional[list[str]], typer.Option("--vary", help="KEY=v1,v2,...; several --vary make a grid.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="weak (global batch grows with gpus) or strong (fixed).")] = "strong",
    replan: Annotated[bool, typer.Option("--replan", help="Re-plan the best layout at every point (planner.search).")] = False,
    png: Annotated[Optional[str], typer.Option("--png", help="Write a matplotlib chart to FILE.")] = None,
    csv: Annotated[Optional[str], typer.Option("--csv", help="Write the table as CSV to FILE.")] = None,
    engine: EngineOpt = "analytic", json_out: bool = JSON_OPTION, scenario_flags: dict | None = None,
) -> None:
    """Estimate over a grid of values; weak/strong scaling curves with scaling efficiency.

    The base layout (--tp/--pp/--global-batch ...) is given at the FIRST point: with
    --vary gpus=128,... the base runs on 128 GPUs, dp is derived there and re-derived at each point.
    """
    if not vary:
        raise SpecError("at least one --vary KEY=v1,v2,... is required", field="--vary")
    check_output(csv, "--csv")
    check_output(png, "--png", suffixes=PLOT_SUFFIXES)
    if png:
        require_plotting("--png")
    grid = [parse_vary(v) for v in vary]
    seen: dict[str, str] = {}
    for key, _values in grid:
        full = canonical_key(key)
        if full in seen:
            raise SpecError(f"{key} is varied twice ('{seen[full]}' and '{key}'); give all its values in one "
                            f"--vary {key}=v1,v2,...", field="--vary")
        seen[full] = key
    points = math.prod(len(values) for _key, values in grid)
    if points > MAX_SWEEP_POINTS:
        raise SpecError(f"the grid has {points:,} points, more than {MAX_SWEEP_POINTS:,}; vary fewer values",
                        field="--vary")
    for key, values in grid:
        bad = [v for v in values if key == "gpus" and not (v.isdigit() and int(v) > 0)]
        if bad:
            raise SpecError(f"gpus={','.join(values)}: '{bad[0]}' is not a positive whole number of GPUs",
                            field="--vary")
    first = dict((k, vals[0]) for k, vals in grid)
    if scenario_flags["gpus"] is None and "gpus" in first:
        scenario_flags["gpus"] = int(first["gpus"])
    replanner = search_replanner() if replan else None
    scenario = scenario_from(base, **scenario_flags)
    with job_progress("sweep points", points, enabled=not json_out) as progress:
        result = run_sweep(scenario, grid, mode, engine, replanner,  # type: ignore[arg-type]
                           progress=lambda done, total: progress.done(done, total=total))
    if csv:
        write_atomic(csv, sweep_csv(result))
    if png:
        with atomic_output(png) as tmp:
            sweep_png(result, str(tmp))
    if json_out:
        print_json(result)
        return
    console.print(render_sweep(result))
    for path in (csv, png):
        if path:
            console.print(f"wrote {path}", highlight=False)


@app.command()
@c.scenario_options()
def sensitivity(
    base: BaseArg = None,
    step: Annotated[float, typer.Option("--step", help="Relative change each way (0.10 = ±10%).")] = 0.10,
    engine: EngineOpt = "analytic", json_out: bool = JSON_OPTION, scenario_flags: dict | None = None,
) -> None:
    """Elasticity of step time to each hardware and model parameter (±10 %), ranked: the bottleneck list."""
    if not MIN_STEP <= step < 0.5:
        raise SpecError(f"{step:g} is outside [{MIN_STEP:g}, 0.5)", field="--step")
    scenario = scenario_from(base, **scenario_flags)
    result = run_sensitivity(scenario, engine, step)
    if json_out:
        print_json(result)
    else:
        console.print(render_sensitivity(result))
