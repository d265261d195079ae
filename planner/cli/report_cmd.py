"""``paraplan report frontier``: regenerate the Frontier case-study report (Markdown + PNGs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .app import JSON_OPTION, app, console, print_json, write_atomic

report_app = typer.Typer(help="Regenerate the case-study reports (Markdown with PNG plots).", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("frontier")
def frontier(
    out: Annotated[Path, typer.Option("--out", help="Output stem: writes OUT.md and the PNGs under OUT/.")] = Path(
        "docs/frontier"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Reproduce Dash et al. 2023 (arXiv 2312.12705) on Frontier: headline, sweeps, scaling, memory, best plans."""
    from ..report import frontier_report

    result = frontier_report(out)
    md_path = write_atomic(out.with_suffix(".md"), result["markdown"])
    if json_out:
        print_json({"markdown": str(md_path), "images": result["images"], "data": result["data"]})
        return
    table = Table(title="Frontier headline: study vs paraplan (% of 191.5 TFLOP/s per GCD)", title_justify="left")
    for col in ("model", "GCDs", "layout", "study %", "paraplan %", "error %"):
        table.add_column(col, justify="left" if col in ("model", "layout") else "right")
    for h in result["data"]["headline"]:
        table.add_row(h["model"], str(h["gpus"]), h["layout"], f"{h['study_percent']:.2f}",
                      f"{h['predicted_percent']:.2f}", f"{h['error_percent']:+.1f}")
    console.print(table)
    console.print(f"wrote {md_path} and {len(result['images'])} PNG(s) under {out}/")
