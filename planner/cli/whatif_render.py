"""Rich, CSV and matplotlib renderings of what-if results (compare, sweep, sensitivity)."""

from __future__ import annotations

import csv
import io

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..whatif import Comparison, Sensitivity, SweepResult
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
    row("bottleneck", lambda col: f"{col.bottleneck.label} {col.bottleneck.share:.0%}")
    row("largest overhead", lambda col: f"{col.overhead.label} {col.overhead.share:.0%}")
    lines: list = [table, Text("")]
    for i, col in enumerate(cmp.variants, 1):
        shifts = [s for s in (col.bottleneck_shift, col.overhead_shift) if s]
        words = "; ".join(shifts) if shifts else (
            f"bottleneck unchanged ({col.bottleneck.label}), largest overhead unchanged ({col.overhead.label})")
        lines.append(Text(f"variant {i} ({col.label}): {words}", style="bold" if shifts else ""))
        if not col.estimate.fits:
            lines.append(Text(f"variant {i} no longer fits in device memory", style="bold red"))
        lines += [Text(f"  note: {n}", style="dim") for n in col.notes]
    return Group(*lines)


def sparkline(values: list[float | None]) -> str:
    """A unicode sparkline of ``values`` (None -> space), scaled from 0 to the maximum."""
    top = max((v for v in values if v is not None), default=0) or 1.0
    return "".join(" " if v is None else SPARK[min(7, max(0, round(v / top * 7)))] for v in values)


def render_sweep(res: SweepResult) -> Group:
    """Sweep table with an efficiency bar per point, and a sparkline of throughput."""
    title = f"Sweep ({res.mode} scaling, {res.engine} engine{', re-planned' if res.replan else ''})"
    table = Table(title=title, show_edge=False)
    for key in res.keys:
        table.add_column(key, justify="right")
    for name in ("layout", "global batch", "step time", "tokens/s", "tok/s/GPU", "MFU", "peak mem",
                 "bottleneck", "efficiency", ""):
        table.add_column(name, justify="right" if name not in ("layout", "bottleneck", "") else "left")
    for p in res.points:
        keys = [p.values[k] for k in res.keys]
        if p.error:
            table.add_row(*keys, Text(p.error, style="red"), *[""] * 9)
            continue
        eff = p.efficiency
        bar = Text("█" * round(min(eff, 1.2) * 20), style="green" if eff >= 0.9 else "yellow") if eff else Text("")
        mem = Text(fmt_bytes(p.peak_memory_bytes), style="" if p.fits else "bold red")
        table.add_row(*keys, p.layout, str(p.global_batch), fmt_seconds(p.step_time_s), f"{p.tokens_per_s:,.0f}",
                      f"{p.tokens_per_s_per_gpu:,.1f}", f"{p.mfu:.1%}", mem,
                      f"{p.bottleneck.label} {p.bottleneck.share:.0%}",
                      f"{eff:.1%}" if eff is not None else "-", bar)
    tps = [p.tokens_per_s for p in res.points]
    items = [table, Text(""), Text(f"tokens/s    {sparkline(tps)}")]
    effs = [p.efficiency for p in res.points]
    if any(e is not None for e in effs):
        items.append(Text(f"efficiency  {sparkline(effs)}"))
        done = [p for p in res.points if p.efficiency is not None]
        if len(done) > 1:
            items.append(Text(f"scaling efficiency {done[0].gpus} -> {done[-1].gpus} GPUs ({res.mode}): "
                              f"{done[-1].efficiency:.1%}", style="bold"))
    if any(p.fits is False for p in res.points):
        items.append(Text("red memory: the point does not fit in device memory", style="red"))
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


def sweep_png(res: SweepResult, path: str, title: str = "") -> None:
    """Throughput (with the ideal line) and scaling efficiency against the first varied key;
    ``title`` (model and hardware) heads the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in res.points if not p.error]
    by_gpus = "gpus" in res.keys
    xs = [p.gpus for p in pts] if by_gpus else list(range(len(pts)))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.plot(xs, [p.tokens_per_s for p in pts], "o-", label="predicted")
    if by_gpus and pts:
        ideal = [pts[0].tokens_per_s * g / pts[0].gpus for g in xs]
        ax1.plot(xs, ideal, "--", color="grey", label="ideal (linear)")
    ax1.set_ylabel("throughput (tokens/s)")
    ax2.plot(xs, [100 * (p.efficiency or 0) for p in pts], "s-", color="tab:green", label=f"{res.mode} scaling")
    ax2.axhline(100, ls="--", color="grey", label="ideal (100 %)")
    ax2.set_ylabel("scaling efficiency (%)")
    ax2.set_ylim(0, 110)
    for ax in (ax1, ax2):
        ax.set_xlabel("GPUs" if by_gpus else ", ".join(res.keys) + " (point)")
        if not by_gpus:
            ax.set_xticks(xs, [" ".join(p.values.values()) for p in pts])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{title + ': ' if title else ''}{res.mode} scaling sweep ({res.engine})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render_sensitivity(res: Sensitivity) -> Group:
    """Ranked elasticity tables, hardware then model, and the bottleneck sentence."""
    items: list = [Text(res.headline, style="bold")]
    items += [Text(s) for s in res.sentences[1:4]] + [Text("")]
    for group, rows in (("hardware", res.hardware), ("model", res.model)):
        table = Table(title=f"{group} parameters (step {fmt_seconds(res.step_time_s)}, ±10 %)", show_edge=False)
        for name in ("rank", "parameter", "key", "value", "elasticity", "share", "", "change", "step time"):
            table.add_column(name, justify="left" if name in ("parameter", "key", "") else "right")
        for i, r in enumerate(rows, 1):
            hw = group == "hardware"
            bar = Text("█" * round(min(r.bound_share, 1.0) * 20) if hw else "", style="magenta")
            table.add_row(str(i), r.label, r.key, f"{r.value:g}", f"{r.elasticity:+.3f}",
                          f"{r.bound_share:.1%}" if hw else "-", bar, r.improve_text.split(" ")[0],
                          f"{r.improve_delta:+.2%}")
        items += [table, Text("")]
    items += [Text(f"skipped {s}", style="dim") for s in res.skipped]
    items.append(Text("elasticity = d ln(step time) / d ln(value) by central difference; share = |elasticity|, "
                      "the fraction of the step that scales with the parameter", style="dim"))
    return Group(*items)
