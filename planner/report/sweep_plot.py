"""PNG of a ``paraplan sweep``: the varied key on the x axis, throughput and step time on y,
points that do not fit (or cannot run) marked. Scaling efficiency only when ``gpus`` is varied
(it is defined against the first point's GPU count). matplotlib is imported lazily."""

from __future__ import annotations

from itertools import groupby

from .plots import PART_COLORS, PNG_METADATA

NOFIT = dict(marker="X", s=90, color="#c0392b", zorder=5)


def _series(res):
    """(label, points) per combination of the keys after the first (one line each)."""
    rest = res.keys[1:]

    def tag(p):
        return ", ".join(f"{k}={p.values[k]}" for k in rest)

    pts = sorted(res.points, key=tag) if rest else list(res.points)
    return [(label, list(group)) for label, group in groupby(pts, key=tag)]


def _x_of(res):
    """x position of a point: the GPU count when gpus is the first key, else the index of its
    first-key value in the order given (ticks labelled with the values)."""
    first = res.keys[0]
    order = list(dict.fromkeys(p.values[first] for p in res.points))
    if first == "gpus":
        return (lambda p: float(p.values[first])), None
    return (lambda p: float(order.index(p.values[first]))), order


def sweep_figure(res):
    """The matplotlib Figure of ``res`` (a :class:`~planner.whatif.SweepResult`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = res.keys[0]
    by_gpus = first == "gpus"
    x_of, ticks = _x_of(res)
    series = _series(res)
    ncols = 3 if by_gpus else 2
    fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 4.4))
    ax_tps, ax_step = axes[0], axes[1]
    marked = failed = False
    for label, pts in series:
        ok = [p for p in pts if not p.error]
        line = ax_tps.plot([x_of(p) for p in ok], [p.tokens_per_s for p in ok], "o-", label=label or "predicted")[0]
        ax_step.plot([x_of(p) for p in ok], [p.step_time_s for p in ok], "o-", color=line.get_color(),
                     label=label or "step time")
        bad = [p for p in ok if p.fits is False]
        if bad:
            marked = True
            ax_tps.scatter([x_of(p) for p in bad], [p.tokens_per_s for p in bad], **NOFIT)
            ax_step.scatter([x_of(p) for p in bad], [p.step_time_s for p in bad], **NOFIT)
        for p in pts:
            if p.error:
                failed = True
                for ax in (ax_tps, ax_step):
                    ax.axvline(x_of(p), color="#c0392b", ls=":", lw=1)
    if not series or len(series) == 1:
        _stack_parts(ax_step, res, x_of)
    if marked:
        ax_tps.scatter([], [], label="does not fit in memory", **NOFIT)
    if failed:
        ax_tps.plot([], [], color="#c0392b", ls=":", label="cannot run (see table)")
    if by_gpus:
        _efficiency(axes[2], res, series, x_of)
        ok = [p for p in series[0][1] if not p.error]
        if ok:
            ax_tps.plot([x_of(p) for p in ok], [ok[0].tokens_per_s * p.gpus / ok[0].gpus for p in ok], "--",
                        color="grey", label="ideal (linear)")
    ax_tps.set_ylabel("throughput (tokens/s)")
    ax_step.set_ylabel("step time (s)")
    for ax in axes:
        ax.set_xlabel("GPUs" if by_gpus else first)
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    who = " — ".join(x for x in (res.model, res.hardware) if x)
    fig.suptitle(f"sweep over {', '.join(res.keys)} ({res.mode} scaling, {res.engine})" + (f"\n{who}" if who else ""))
    fig.tight_layout()
    return fig


def _stack_parts(ax, res, x_of) -> None:
    """The step time of each point split into its breakdown parts (stacked bars, one series)."""
    ok = [p for p in res.points if not p.error and p.time_s]
    if not ok:
        return
    xs = [x_of(p) for p in ok]
    bottom = [0.0] * len(ok)
    width = 0.5 if res.keys[0] != "gpus" else 0.4 * min((b - a for a, b in zip(xs, xs[1:])), default=1.0)
    for part, color in PART_COLORS.items():
        vals = [p.time_s.get(part, 0.0) for p in ok]
        if any(vals):
            ax.bar(xs, vals, width, bottom=bottom, color=color, alpha=0.55, label=part)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]


def _efficiency(ax, res, series, x_of) -> None:
    for label, pts in series:
        ok = [p for p in pts if not p.error and p.efficiency is not None]
        ax.plot([x_of(p) for p in ok], [100 * p.efficiency for p in ok], "s-", label=label or f"{res.mode} scaling")
        bad = [p for p in ok if p.fits is False]
        if bad:
            ax.scatter([x_of(p) for p in bad], [100 * p.efficiency for p in bad], **NOFIT)
    ax.axhline(100, ls="--", color="grey", label="ideal (100 %)")
    ax.set_ylabel(f"{res.mode} scaling efficiency (%)")
    ax.set_ylim(0, 110)


def sweep_png(res, path: str) -> None:
    """Write the sweep figure of ``res`` to ``path`` (PNG)."""
    fig = sweep_figure(res)
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110, metadata=PNG_METADATA)
    plt.close(fig)


__all__ = ["sweep_figure", "sweep_png"]
