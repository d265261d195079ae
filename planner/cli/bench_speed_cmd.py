"""``paraplan bench speed``: how fast the planner searches (frontier-1t on 3072 GCDs)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .app import JSON_OPTION, console, print_json
from .bench_cmd import bench_app


@bench_app.command("speed")
def speed(
    repeats: Annotated[int, typer.Option("--repeats", help="Searches to run (best time is reported).")] = 3,
    json_out: bool = JSON_OPTION,
) -> None:
    """Time the full default search for frontier-1t on 3072 MI250X GCDs (global batch 6144)."""
    from ..bench.speed import measure
    from ..errors import SpecError

    if repeats < 1:
        raise SpecError(f"{repeats} must be >= 1", field="--repeats")
    rep = measure(repeats=repeats)
    if json_out:
        print_json(rep)
        return
    t = Table(title=f"paraplan plan speed: {rep.model} on {rep.gpus} x {rep.hardware}, batch {rep.global_batch}",
              show_header=False, show_edge=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("full default search", f"{rep.search_s:.2f} s (target <= {rep.target_s:.0f} s)")
    t.add_row("layout structures", str(rep.structures))
    t.add_row("candidates memory-checked", f"{rep.memory_checked}")
    t.add_row("candidates priced", f"{rep.priced}")
    t.add_row("layouts evaluated per second", f"{rep.layouts_per_s:,.0f}")
    t.add_row("one estimate of the best plan", f"{rep.estimate_ms:.2f} ms")
    t.add_row("best layout", rep.best)
    console.print(t)
