"""Rich, CSV and matplotlib renderings of what-if results (compare, sweep, sensitivity)."""

from __future__ import annotations

import csv
import io

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..whatif import Comparison, Sensitivity, SweepResult
from .app import console
from .fit_table import Col, fitted_table
from .render import GIB, TIME_COLORS, fmt_bytes, fmt_seconds

SPARK = "▁▂▃▄▅▆▇█"


def _pct(x: float, good_when_negative: bool) -> Text:
    """``(+3.1%)`` coloured green when the change is an improvement."""
    if abs(x) < 5e-4:
        return Text(" (±0%)", style="dim")
    good = (x < 0) == good_when_negative
    return Text(f" ({x:+.1%})", style="green" if good else "red")


def render_comparison(cmp: Comparison) -> Group:
    """Base and variants side by side with deltas, fit flags and bottleneck shifts."""
    cols = [cmp.base, *cmp.variants]
    table = Table(title=f"What if ({cmp.engine} engine)", show_edge=False)
    table.add_column("", style="bold")
    for i in range(len(cols)):
        table.add_column("base" if i == 0 else f"variant {i}", justify="right")

    def row(name, cell):
        table.add_row(name, *[cell(col) for col in cols])

    def with_delta(text: str, col, attr: str, good_neg: bool) -> Text:
        t = Text(text)
        if col.delta is not None:
            t.append_text(_pct(getattr(col.delta, attr), good_neg))
        return t

    row("settings", lambda col: Text(", ".join(col.settings) or "-", style="cyan"))
    row("layout", lambda col: f"{col.layout} on {col.gpus}")
    row("step time", lambda col: with_delta(fmt_seconds(col.estimate.step_time_s), col, "step_time", True))
    row("tokens/s", lambda col: with_delta(f"{col.estimate.tokens_per_s:,.0f}", col, "tokens_per_s", False))

    def mfu(col) -> Text:
        t = Text(f"{col.estimate.mfu:.1%}")
        if col.delta is not None:
            d = col.delta.mfu_points
            t.append(f" ({d * 100:+.1f} pt)", style="dim" if abs(d) < 5e-4 else ("green" if d > 0 else "red"))
        return t

    row("MFU", mfu)

    def memory(col) -> Text:
        w = col.estimate.worst_stage
        return with_delta(f"{w.peak_bytes / GIB:.1f}/{w.capacity_bytes / GIB:.0f} GiB", col, "peak_memory", True)

    row("peak memory (worst stage)", memory)
    row("worst stage", lambda col: str(col.estimate.worst_stage.stage))
    row("fits", lambda col: Text("yes", style="green") if col.estimate.fits
        else Text(f"NO: over by {fmt_bytes(col.estimate.worst_stage.overflow_bytes)}", style="bold red"))
    for part, color in TIME_COLORS.items():
        def cell(col, part=part):
            value = getattr(col.estimate.time, part)
            t = Text(fmt_seconds(value) if value else "0")
            if col.delta is not None and abs(col.delta.time_parts_s[part]) > 1e-9:
                d = col.delta.time_parts_s[part]
                t.append(f" ({'+' if d > 0 else '−'}{fmt_seconds(abs(d))})", style="red" if d > 0 else "green")
            return t
        table.add_row(Text(f"  {part}", style=color), *[cell(col) for col in cols])
    row("bottleneck", lambda col: neck_booked(col.bottleneck))
    row("largest overhead", lambda col: neck_booked(col.overhead))
    lines: list = [table, Text("")]
    for i, col in enumerate(cmp.variants, 1):
        shifts = [s for s in (col.bottleneck_shift, col.overhead_shift) if s]
        words = "; ".join(shifts) if shifts else (
            f"bottleneck unchanged ({col.bottleneck.label}), largest overhead unchanged ({col.overhead.label})")
        lines.append(Text(f"variant {i} ({col.label}): {words}", style="bold" if shifts else ""))
        if not col.estimate.fits:
            again = "does not fit in device memory either" if not cmp.base.estimate.fits else "no longer fits in device memory"
            lines.append(Text(f"variant {i} {again}", style="bold red"))
        lines += [Text(f"  note: {n}", style="dim") for n in col.notes]
    return Group(*lines)


def neck_text(neck) -> str:
    """"compute (2x faster saves 7%, booked 28%)"; the booked share alone when unmeasured."""
    if neck.saving_x2 is None:
        return f"{neck.label} {neck.share:.0%}"
    return f"{neck.label} (2x faster saves {neck.saving_x2:.1%}, booked {neck.share:.0%})"


def neck_booked(neck) -> str:
    """"compute 2x:−7% (booked 28%)" for the what-if table."""
    if neck.saving_x2 is None:
        return neck_text(neck)
    return f"{neck_short(neck)} (booked {neck.share:.0%})"


def sparkline(values: list[float | None]) -> str:
    """A unicode sparkline of ``values`` (None -> space), scaled from 0 to the maximum."""
    top = max((v for v in values if v is not None), default=0) or 1.0
    return "".join(" " if v is None else SPARK[min(7, max(0, round(v / top * 7)))] for v in values)


SHORT_NECK = {"compute": "compute", "tp_comm": "tp comm", "dp_comm": "dp/ZeRO comm", "pp_comm": "pp sends",
              "optimizer": "optimizer", "links": "links", "network": "NIC", "host": "host dispatch"}


def neck_short(neck) -> str:
    """"compute 2x:-24%" (the booked share when unmeasured) for narrow tables."""
    if neck.saving_x2 is None:
        return f"{neck.label} {neck.share:.0%}"
    return f"{SHORT_NECK.get(neck.resource, neck.label)} 2x:−{neck.saving_x2:.0%}"


def render_sweep(res: SweepResult, width: int | None = None) -> Group:
    """Sweep table fitted to ``width`` (numbers never cut; the layout column goes first), an
    efficiency bar per point when gpus is varied, points that failed listed under it, and a
    sparkline of throughput."""
    title = f"Sweep ({res.mode} scaling, {res.engine} engine{', re-planned' if res.replan else ''})"
    scaling = any(p.efficiency is not None for p in res.points)
    cols = [Col(k) for k in res.keys] + [
        Col("layout", numeric=False, drop=3, min_text=10), Col("global batch"), Col("step time"), Col("tokens/s"),
        Col("tok/s/GPU"), Col("MFU"), Col("peak mem"), Col("fits"), Col("bottleneck", numeric=False, drop=2)]
    if scaling:
        cols += [Col("scaling eff."), Col("", numeric=False, drop=1)]
    rows, failed = [], []
    for p in res.points:
        keys = [p.values[k] for k in res.keys]
        if p.error:
            failed.append(Text(f"{' '.join(f'{k}={v}' for k, v in p.values.items())}: {p.error}", style="red"))
            rows.append([*keys, "-", *["-"] * 6, Text("ERROR", style="bold red"), "-"]
                        + (["-", ""] if scaling else []))
            continue
        mem = Text(fmt_bytes(p.peak_memory_bytes), style="" if p.fits else "bold red")
        fits = Text("yes", style="green") if p.fits else Text("NO", style="bold red")
        row = [*keys, p.layout, str(p.global_batch), fmt_seconds(p.step_time_s), f"{p.tokens_per_s:,.0f}",
               f"{p.tokens_per_s_per_gpu:,.1f}", f"{p.mfu:.1%}", mem, fits, neck_short(p.bottleneck)]
        if scaling:
            eff = p.efficiency
            bar = Text("█" * round(min(eff, 1.2) * 20), style="green" if eff >= 0.9 else "yellow") if eff else Text("")
            row += [f"{eff:.1%}" if eff is not None else "-", bar]
        rows.append(row)
    table = fitted_table(cols, rows, console.width if width is None else width, title=title, show_edge=False)
    tps = [p.tokens_per_s for p in res.points]
    items = [table, *failed, Text(""), Text(f"tokens/s    {sparkline(tps)}")]
    effs = [p.efficiency for p in res.points]
    if any(e is not None for e in effs):
        items.append(Text(f"efficiency  {sparkline(effs)}"))
        done = [p for p in res.points if p.efficiency is not None]
        if len(done) > 1:
            items.append(Text(f"scaling efficiency {done[0].gpus} -> {done[-1].gpus} GPUs ({res.mode}): "
                              f"{done[-1].efficiency:.1%}", style="bold"))
    if any(p.fits is False for p in res.points):
        items.append(Text("fits NO: the point does not fit in device memory", style="red"))
    items.append(Text("bottleneck: the resource whose 2x speed-up saves the most step time", style="dim"))
    return Group(*items)


CSV_FIELDS = ("gpus", "layout", "global_batch", "step_time_s", "tokens_per_s", "tokens_per_s_per_gpu", "mfu",
              "peak_memory_bytes", "fits", "efficiency", "error")


def sweep_csv(res: SweepResult) -> str:
    """The sweep as CSV text: varied keys, headline figures, the time breakdown (s)."""
    parts = list(TIME_COLORS)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*[f"vary_{k}" for k in res.keys], *CSV_FIELDS, "bottleneck", *[f"time_{k}_s" for k in parts]])
    for p in res.points:
        d = p.model_dump()
        w.writerow([p.values[k] for k in res.keys] + [d[f] if d[f] is not None else "" for f in CSV_FIELDS]
                   + [p.bottleneck.part if p.bottleneck else ""] + [p.time_s.get(k, "") for k in parts])
    return buf.getvalue()


def sweep_png(res: SweepResult, path: str) -> None:
    """Throughput and step time against the varied key, points that do not fit marked; scaling
    efficiency when gpus is varied (:mod:`planner.report.sweep_plot`)."""
    from ..report.sweep_plot import sweep_png as write

    write(res, path)


def render_sensitivity(res: Sensitivity) -> Group:
    """Ranked elasticity tables, hardware then model, and the bottleneck sentence."""
    items: list = [Text(res.headline, style="bold")]
    if res.bottleneck:
        items.append(Text(res.bottleneck, style="bold"))
    items += [Text(s) for s in res.sentences if s != res.headline][:3] + [Text("")]
    for group, rows in (("hardware", res.hardware), ("model", res.model)):
        hw = group == "hardware"
        cols = [Col("rank"), Col("parameter", numeric=False, drop=1, min_text=12),
                Col("key", numeric=False, drop=3, min_text=12), Col("value"), Col("elasticity"), Col("share"),
                Col("", numeric=False, drop=2, min_text=1), Col("change"), Col("step time")]
        cols += [Col("2x better")] if hw else []
        cells = []
        for i, r in enumerate(rows, 1):
            bar = Text("█" * round(min(r.bound_share, 1.0) * 20) if hw else "", style="magenta")
            cells.append([str(i), r.label, r.key, f"{r.value:g}", f"{r.elasticity:+.3f}",
                          f"{r.bound_share:.1%}" if hw else "-", bar, r.improve_text.split(" ")[0],
                          f"{r.improve_delta:+.2%}",
                          *((f"{r.double_delta:+.1%}" if r.double_delta is not None else "-",) if hw else ())])
        table = fitted_table(cols, cells, console.width, show_edge=False,
                             title=f"{group} parameters (step {fmt_seconds(res.step_time_s)}, ±10 %)")
        items += [table, Text("")]
    if res.stragglers:
        table = Table(title=f"stragglers (simulated step {fmt_seconds(res.step_time_s)})", show_edge=False)
        for col in ("straggler", "--set", "step time", "change"):
            table.add_column(col, justify="left" if col in ("straggler", "--set") else "right")
        for r in res.stragglers:
            table.add_row(r.label, r.setting, fmt_seconds(r.step_time_s), f"{r.delta:+.2%}")
        items += [table, Text("")]
    items += [Text(f"skipped {s}", style="dim") for s in res.skipped]
    items.append(Text("elasticity = d ln(step time) / d ln(value) by central difference; share = |elasticity|, "
                      "the fraction of the step that scales with the parameter", style="dim"))
    return Group(*items)
