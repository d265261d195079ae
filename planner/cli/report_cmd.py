"""``paraplan report frontier``: regenerate the Frontier case-study report (Markdown + PNGs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SpecError
from .app import JSON_OPTION, app, console, print_json, write_atomic

report_app = typer.Typer(help="Regenerate the case-study reports (Markdown with PNG plots).", no_args_is_help=True)
app.add_typer(report_app, name="report")


def default_stem() -> Path:
    """``docs/frontier`` of the source checkout paraplan runs from (whatever the current folder is);
    SpecError when paraplan is installed without one (then --out is required)."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    if not (docs / "frontier.md").is_file():
        raise SpecError("no source checkout to regenerate docs/frontier.md in; give --out STEM "
                        "(writes STEM.md and STEM/*.png)", field="--out")
    return docs / "frontier"


def _publish(tmp_stem: Path, out: Path, images: list[str]) -> list[str]:
    """Copy the PNGs built under ``tmp_stem/`` into ``out/``, each written atomically by planner.io's
    rules (a symbolic link's target is replaced, a FIFO or device written through)."""
    out.mkdir(parents=True, exist_ok=True)
    moved = []
    for image in images:
        target = out / Path(image).name
        write_atomic(target, Path(image).read_bytes())
        moved.append(str(target))
    return moved


@report_app.command("frontier")
def frontier(
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Output stem: writes OUT.md and the PNGs under OUT/.",
        show_default="docs/frontier of the source checkout")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Reproduce Dash et al. 2023 (arXiv 2312.12705) on Frontier: headline, sweeps, scaling, memory, best plans."""
    import tempfile

    from rich.table import Table

    from ..outputs import check_output, require_plotting
    from ..report import frontier_report

    if out is not None and (not str(out).strip() or not out.name):  # typer reads "" as Path(".")
        raise SpecError(f"'{out}' is not an output stem (give e.g. --out docs/frontier)", field="--out")
    out = out if out is not None else default_stem()
    md_target = out.with_name(out.name + ".md") if out.suffix != ".md" else out
    if out.suffix == ".md":
        out = out.with_suffix("")
    check_output(md_target, "--out")
    check_output(out, "--out", folder=True)
    require_plotting("report frontier")
    with tempfile.TemporaryDirectory(prefix=".paraplan-report-", dir=_existing_parent(out)) as tmp:
        result = frontier_report(Path(tmp) / out.name)
        images = _publish(Path(tmp) / out.name, out, result["images"])
    md_path = write_atomic(md_target, result["markdown"])
    if json_out:
        print_json({"markdown": str(md_path), "images": images, "data": result["data"]})
        return
    table = Table(title="Frontier headline: study vs paraplan (% of 191.5 TFLOP/s per GCD)", title_justify="left")
    for col in ("model", "GCDs", "layout", "study %", "paraplan %", "error %"):
        table.add_column(col, justify="left" if col in ("model", "layout") else "right")
    for h in result["data"]["headline"]:
        table.add_row(h["model"], str(h["gpus"]), h["layout"], f"{h['study_percent']:.2f}",
                      f"{h['predicted_percent']:.2f}", f"{h['error_percent']:+.1f}")
    console.print(table)
    console.print(f"wrote {md_path} and {len(images)} PNG(s) under {out}/", highlight=False)


def _existing_parent(path: Path) -> Path:
    """The nearest existing folder above ``path`` (the temporary build folder goes there, so the
    final renames stay on one file system)."""
    for candidate in path.parents:
        if candidate.is_dir():
            return candidate
    return Path(".")
