"""Rich renderings shared by commands: estimate summary, time bar, memory bars."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..cost.result import Estimate

TIME_COLORS = {
    "compute": "green", "tp_comm": "magenta", "cp_comm": "bright_magenta", "pp_bubble": "red", "pp_comm": "yellow",
    "dp_comm_exposed": "cyan", "optimizer": "blue", "other": "white",
}
GIB = 2**30


def fmt_seconds(s: float) -> str:
    """Seconds with a sensible unit."""
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} us"


def fmt_range(lo: float | None, hi: float | None) -> str:
    """A min-max range of seconds in the unit of its top: '188-295 ms'; '-' when unknown."""
    if lo is None or hi is None:
        return "-"
    top = fmt_seconds(hi)
    unit = top.split()[-1]
    scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
    digits = 2 if unit == "s" else 0
    return f"{lo * scale:.{digits}f}-{hi * scale:.{digits}f} {unit}"


def fmt_bytes(b: float) -> str:
    """Bytes as GiB (or MiB when small)."""
    return f"{b / GIB:.1f} GiB" if b >= GIB / 10 else f"{b / 2**20:.0f} MiB"


def stacked_bar(parts: dict[str, float], colors: dict[str, str], width: int = 60) -> Text:
    """A one-line stacked bar of ``parts`` (values >= 0)."""
    total = sum(parts.values()) or 1.0
    bar = Text()
    used = 0
    items = [(k, v) for k, v in parts.items() if v > 0]
    for i, (key, value) in enumerate(items):
        n = round(value / total * width) if i < len(items) - 1 else width - used
        n = max(0, min(n, width - used))
        bar.append("█" * n, style=colors.get(key, "white"))
        used += n
    return bar


def time_table(est: Estimate, analysis=None) -> Table:
    """Where the step time goes; with a :class:`~planner.cost.bottleneck.BottleneckAnalysis`, what
    each part's resource made 2x faster saves (the bottleneck's row in bold)."""
    parts = est.time.model_dump()
    table = Table(title="Step time breakdown", show_edge=False)
    table.add_column("part", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    saving = {}
    if analysis is not None:
        from ..cost.bottleneck import PART_RESOURCES

        table.add_column("2x faster saves", justify="right", no_wrap=True)
        saving = {s.part: s.saving for s in analysis.speedups if s.resource in PART_RESOURCES}
        neck = analysis.bottleneck  # bold its part's row when the bottleneck is that part's own resource
        top = neck.part if neck.saving > 0 and neck.resource in PART_RESOURCES else None
    for key, value in parts.items():
        if key == "cp_comm" and not value:  # shown only for context-parallel layouts
            continue
        row = [Text(key, style=TIME_COLORS[key]), fmt_seconds(value), f"{value / est.step_time_s:6.1%}"]
        if analysis is not None:
            row.append(f"{saving[key]:.1%}" if key in saving else "-")
        table.add_row(*row, style="bold" if analysis is not None and key == top else None)
    return table


def memory_table(est: Estimate, max_rows: int = 8) -> Table:
    """Peak memory per stage against capacity (first, largest and last stages when many)."""
    table = Table(title="Peak memory per GPU by pipeline stage (GiB)", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("stage", "layers", "weights", "grads", "optim", "activ", "other", "peak"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    table.add_column("of HBM", justify="left", no_wrap=True, overflow="crop")
    stages = est.memory
    if len(stages) > max_rows:
        keep = {0, len(stages) - 1, est.worst_stage.stage}
        stages = [s for s in stages if s.stage in keep]
    for s in stages:
        b = s.breakdown
        frac = s.peak_bytes / s.capacity_bytes
        filled = min(10, round(frac * 10))
        bar = Text("█" * filled, style="green" if s.fits else "red")
        bar.append("░" * max(0, 10 - filled), style="dim")
        bar.append(f" {frac:.0%}")
        table.add_row(str(s.stage), str(s.layers), *(f"{v / GIB:.1f}" for v in (
            b.params, b.grads, b.optimizer, b.activations, b.buffers + b.reserved, s.peak_bytes)), bar)
    return table


def summary_table(est: Estimate) -> Table:
    """Headline figures of an estimate."""
    t = Table(show_header=False, show_edge=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("model / hardware", f"{est.model} on {est.gpus} x {est.hardware}")
    t.add_row("layout", f"{est.layout.describe()}  schedule {est.layout.schedule}  micro-batch "
              f"{est.training.micro_batch_size} x {est.micro_batches} per step")
    t.add_row("recipe", f"{est.training.recipe} ({est.training.recipe_spec.framework})")
    t.add_row("step time", fmt_seconds(est.step_time_s))
    t.add_row("tokens/s", f"{est.tokens_per_s:,.0f}")
    t.add_row("model TFLOP/s/GPU (MFU)", f"{est.model_tflops_per_gpu:.1f} ({est.mfu:.1%})")
    t.add_row("hardware TFLOP/s/GPU (HFU)", f"{est.hardware_tflops_per_gpu:.1f} ({est.hfu:.1%})")
    worst = est.worst_stage
    fit = "[green]fits[/]" if est.fits else f"[red]does not fit: stage {worst.stage} over by {fmt_bytes(worst.overflow_bytes)}[/]"
    t.add_row("peak memory", f"{fmt_bytes(est.peak_memory_bytes)} of {fmt_bytes(worst.capacity_bytes)}  {fit}")
    t.add_row("  reserved / allocated", f"{fmt_bytes(worst.peak_bytes)} reserved (torch max_memory_reserved: live tensors, "
              f"allocator pools, runtime) / {fmt_bytes(worst.allocated_bytes)} allocated (max_memory_allocated)")
    return t


def render_estimate(est: Estimate, analysis=None) -> Group:
    """The full rich view of one estimate (``analysis``: its bottleneck, see :func:`time_table`)."""
    parts = est.time.model_dump()
    bar = Text("time  ")
    bar.append_text(stacked_bar(parts, TIME_COLORS))
    legend = Text("      ")
    for key, color in TIME_COLORS.items():
        if parts[key] > 0:
            legend.append("■ ", style=color)
            legend.append(f"{key} ")
    items = [summary_table(est), Text(""), bar, legend, Text(""), time_table(est, analysis)]
    if analysis is not None:
        from ..cost.bottleneck import story

        items.append(Text(story(analysis, est.step_time_s), style="bold"))
        if est.engine != "analytic":
            items.append(Text("(2x figures: analytic re-estimates)", style="dim"))
    items += [Text(""), memory_table(est)]
    if est.notes:
        items += [Text("")] + [Text(f"note: {n}", style="dim") for n in est.notes]
    return Group(*items)
