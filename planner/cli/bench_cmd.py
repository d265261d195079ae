"""``paraplan bench``: benchmarks of paraplan itself (accuracy against published runs, speed)."""

from __future__ import annotations

import statistics
from typing import Annotated, Optional

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from .app import JSON_OPTION, app, console, print_json

bench_app = typer.Typer(help="Benchmarks of paraplan itself: accuracy and speed.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}%"


def _stats_row(name: str, g) -> list[str]:
    if not g.rows:
        return [name, "0", "-", "-", "-", "-"]
    return [name, str(g.rows), f"{g.median_abs_error_pct:.1f}%", f"{g.mean_abs_error_pct:.1f}%",
            f"{g.within_10pct:.0%}", f"{g.median_error_pct:+.1f}%"]


def _memory_cell(r) -> Text:
    """'measured / predicted (error, kind)' of a row that publishes its peak memory."""
    if r.memory_error_pct is None:
        return Text("-")
    style = "green" if abs(r.memory_error_pct) <= 10 else "red"
    return Text(f"{r.measured_memory_gib:.1f} / {r.predicted_memory_gib:.1f} ({_pct(r.memory_error_pct)}, "
                f"{r.memory_kind})", style=style)


def render_accuracy(report) -> Group:
    """Per-row table, summary table and skipped rows of an AccuracyReport."""
    rows = Table(title=f"paraplan bench accuracy: {report.csv}", title_justify="left")
    with_memory = any(r.memory_error_pct is not None for r in report.rows)
    cols = [("row", "right"), ("source", "left"), ("model", "left"), ("gpus", "right"), ("layout", "left"),
            ("measured", "right"), ("predicted", "right"), ("error", "right")]
    if with_memory:
        cols.append(("memory meas / pred (GiB)", "right"))
    for col, just in cols + [("flags", "left")]:
        rows.add_column(col, justify=just, overflow="fold")
    for r in report.rows:
        if r.compared == "step_time":
            measured, predicted = f"{r.measured_step_s:.2f} s", f"{r.predicted_step_s:.2f} s"
        elif r.compared == "tokens":
            measured, predicted = f"{r.measured_tokens_per_gpu:,.0f} tok/s/GPU", f"{r.predicted_tokens_per_gpu:,.0f}"
        else:
            measured = f"{r.measured_tflops:.1f} TF ({r.convention})"
            predicted = f"{r.predicted_tflops:.1f} TF"
        flags = ([] if r.fully_stated else ["defaults: " + ",".join(r.defaults_used)]) + r.flags
        err = Text(_pct(r.error_pct), style="green" if abs(r.error_pct) <= 10 else "red")
        cells = [r.row_id, r.source_id, r.model, str(r.gpus), f"{r.layout} rc:{r.recompute} {r.recipe}", measured,
                 predicted, err]
        if with_memory:
            cells.append(_memory_cell(r))
        rows.add_row(*cells, "; ".join(flags) or "fully stated")
    summary = Table(title="absolute throughput error (+ = predicted faster than measured)", title_justify="left")
    for col in ("group", "rows", "median |err|", "mean |err|", "within 10%", "median err"):
        summary.add_column(col, justify="left" if col == "group" else "right")
    s = report.summary
    summary.add_row(*_stats_row("all predicted rows", s.all_rows))
    if s.dense_rows is not None:
        summary.add_row(*_stats_row("dense rows", s.dense_rows))
    summary.add_row(*_stats_row("fully stated dense rows", s.fully_stated), style="bold")
    if s.context_parallel is not None and s.context_parallel.rows:
        summary.add_row(*_stats_row("context-parallel rows (cp > 1)", s.context_parallel))
    if s.moe_rows is not None and s.moe_rows.rows:
        summary.add_row(*_stats_row("MoE rows (expert parallelism)", s.moe_rows), style="bold")
    if s.memory is not None and s.memory.rows:
        summary.add_row(*_stats_row("peak memory (+ = predicted more)", s.memory), style="bold")
    for name, g in s.by_hardware.items():
        summary.add_row(*_stats_row(f"hardware {name} (dense)", g))
    for name, g in s.fully_stated_by_hardware.items():
        summary.add_row(*_stats_row(f"fully stated, {name}", g))
    for name, g in s.by_recipe.items():
        summary.add_row(*_stats_row(f"recipe {name} (dense)", g))
    for name, g in s.by_recipe_family.items():
        summary.add_row(*_stats_row(f"recipe family {name} and its releases (dense)", g))
    for name, g in s.by_source.items():
        summary.add_row(*_stats_row(f"source {name}", g))
    skipped = Table(title=f"skipped rows ({len(report.skipped)})", title_justify="left")
    for col in ("row", "model", "hardware", "reason"):
        skipped.add_column(col, overflow="fold")
    for sk in report.skipped:
        skipped.add_row(sk.row_id, sk.model, sk.hardware, sk.reason)
    return Group(rows, summary, skipped)


@bench_app.command("accuracy")
def accuracy(
    csv_path: Annotated[Optional[str], typer.Argument(
        metavar="[CSV]", help="Published-runs CSV (default: the shipped hwprofiles/data/published_runs.csv).")] = None,
    hardware_map: Annotated[Optional[list[str]], typer.Option(
        "--hardware-map", help="PREFIX[@MEM_GB]=PROFILE: map rows whose hardware starts with PREFIX (and has "
        "MEM_GB of HBM) to a profile name or YAML path; tried before the built-in map. Repeatable.")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Predict published measured runs and compare on each row's own FLOPs convention."""
    from ..bench.accuracy import run_accuracy
    from ..bench.rows import parse_hardware_map

    report = run_accuracy(csv_path, parse_hardware_map(hardware_map))
    if json_out:
        print_json(report)
    else:
        console.print(render_accuracy(report))


@bench_app.command("frontier-fit")
def frontier_fit(json_out: bool = JSON_OPTION) -> None:
    """Refit the MI250X efficiency parameters to the Frontier study's three headline throughputs
    (grid search; about 10 s). The shipped profile holds the result of this fit."""
    from planner.bench.fit_mi250x_frontier import POINTS, fit

    (gemm_scale, collective_eff, network_eff), errors = fit()
    result = {"gemm_scale": gemm_scale, "collective_efficiency": collective_eff,
              "network_efficiency": network_eff,
              "relative_error_pct": {p[0]: round(e, 2) for p, e in zip(POINTS, errors)}}
    if json_out:
        print_json(result)
        return
    table = Table(title="MI250X fit to Dash et al. 2023 headline throughputs")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    table.add_row("GEMM efficiency scale", f"{gemm_scale:.2f}")
    table.add_row("node.collective_efficiency", f"{collective_eff:.2f}")
    table.add_row("network.efficiency", f"{network_eff:.2f}")
    for name, err in result["relative_error_pct"].items():
        table.add_row(f"error at {name}", f"{err:+.2f} %")
    console.print(table)


def render_steps(report) -> Group:
    """Per-case table and summary of a StepsReport."""
    table = Table(title=f"paraplan bench steps: {report.file} on {report.hardware}, recipe {report.recipe}",
                  title_justify="left")
    for col in ("model", "mbs", "rc", "measured", "predicted", "time err", "alloc meas", "alloc pred", "mem err",
                "peak at", "reserved err", "note"):
        table.add_column(col, justify="left" if col in ("model", "peak at", "note") else "right", overflow="fold")
    for c in report.cases:
        bad_t = abs(c.time_error_pct) > 15 and c.host_bound is None
        table.add_row(
            c.model, str(c.micro_batch), "yes" if c.recompute else "no", f"{c.measured_s * 1e3:.1f} ms",
            f"{c.predicted_s * 1e3:.1f} ms", Text(_pct(c.time_error_pct), style="red" if bad_t else "green"),
            f"{c.measured_alloc_gib:.2f} GiB", f"{c.predicted_alloc_gib:.2f} GiB", _pct(c.memory_error_pct),
            c.peak_at, _pct(c.reserved_error_pct), "host-bound (below)" if c.host_bound else "")
    summary = Table(title="summary (error = predicted / measured - 1)", title_justify="left")
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    summary.add_column("target", justify="right")
    summary.add_row("median |time error|", f"{report.median_abs_time_error_pct:.1f}%", "<= 5%")
    summary.add_row("median |allocated-memory error|", f"{report.median_abs_memory_error_pct:.1f}%", "<= 5%")
    summary.add_row("worst |time error| (not host-bound)", f"{report.worst_time_error_pct:.1f}%", "<= 15%")
    summary.add_row("worst |memory error| (not host-bound)", f"{report.worst_memory_error_pct:.1f}%", "<= 15%")
    summary.add_row("median |reserved-memory error| (allocator reserve, informational)",
                    f"{report.median_abs_reserved_error_pct:.1f}%", "-")
    summary.add_row("host-bound cases (named above)", str(report.host_bound_cases), "-")
    summary.add_row("within targets", "yes" if report.within_targets else "no", "-",
                    style="bold green" if report.within_targets else "bold red")
    reasons = [Text(f"• {c.model} mbs {c.micro_batch}{' recompute' if c.recompute else ''}: {c.host_bound}", style="dim")
               for c in report.cases if c.host_bound]
    return Group(table, *reasons, summary)


@bench_app.command("steps")
def steps(
    file: Annotated[Optional[str], typer.Argument(
        metavar="[FILE]", help="Measured steps JSON (default: the shipped hwprofiles/data/h200_train_steps.json).")] = None,
    hardware: Annotated[Optional[str], typer.Option(
        "--hardware", help="Profile name or YAML (default: the profile of the file's env.name).")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Predict measured single-GPU eager training steps (torch-amp recipe): time and memory error per case."""
    from ..bench.steps import run_steps

    report = run_steps(file, hardware)
    if json_out:
        print_json(report)
    else:
        console.print(render_steps(report))


@bench_app.command("evidence")
def evidence(
    write: Annotated[bool, typer.Option("--write", help="Write the table to planner/data/evidence.json (what plan "
                                        "and estimate read).")] = False,
    out: Annotated[Optional[str], typer.Option("--out", help="Write the table to FILE instead.")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Build the evidence table (measured runs per layout class) from bench accuracy and bench steps."""
    from ..bench.evidence import build_table, shipped_path, table_text
    from ..io import write_atomic
    from ..outputs import check_output

    target = out if out is not None else (str(shipped_path()) if write else None)
    check_output(target, "--out" if out is not None else "--write")
    table = build_table()
    text = table_text(table)
    shipped = shipped_path()
    stale = not shipped.is_file() or shipped.read_text() != text
    if target is not None:
        write_atomic(target, text)
    if json_out:
        print_json({"rows": len(table.rows), "files": table.files, "shipped": str(shipped),
                    "shipped_was_stale": stale, "written": target, "table": table})
        return
    classes: dict[str, list] = {}
    for r in table.rows:
        classes.setdefault(r.layout_class.describe(), []).append(r)
    summary = Table(title=f"evidence: {len(table.rows)} measured runs in {len(classes)} layout classes "
                    f"({', '.join(table.files)})", title_justify="left")
    for col in ("class", "runs", "median err", "best measured MFU"):
        summary.add_column(col, justify="left" if col == "class" else "right")
    for name, rows in sorted(classes.items()):
        summary.add_row(name, str(len(rows)), f"{statistics.median(r.error_pct for r in rows):+.1f}%",
                        f"{max(r.measured_mfu for r in rows):.1%}")
    console.print(summary)
    state = "was stale" if stale else "is up to date"
    console.print(Text(f"shipped table {shipped} {state}" + (f"; wrote {target}" if target else
                       ("; write it with: paraplan bench evidence --write" if stale else "")),
                       style="yellow" if stale and target is None else "green"), highlight=False)
