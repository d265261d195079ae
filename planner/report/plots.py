"""PNG plots of the Frontier report (matplotlib, imported lazily; fixed metadata so reruns match)."""

from __future__ import annotations

from pathlib import Path

GIB = 2**30

#: No version string or timestamp in the PNG text chunks.
PNG_METADATA = {"Software": None}
PART_COLORS = {"compute": "#4c9f70", "tp_comm": "#d9822b", "cp_comm": "#e6a0c4", "pp_bubble": "#bbbbbb", "pp_comm": "#8e6c8a",
               "dp_comm_exposed": "#c0392b", "optimizer": "#555555", "other": "#999999"}
MEM_COLORS = {"params": "#3b6ea5", "grads": "#6fa8dc", "optimizer": "#d9822b", "activations": "#4c9f70",
              "buffers": "#8e6c8a", "reserved": "#999999"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "paraplan", "font.size": 9})
    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=PNG_METADATA)
    fig.clf()
    return path


def headline_png(r: dict, path: Path) -> Path:
    """Study vs predicted % of peak for the three models (grouped bars)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    rows = r["headline"]
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [h["study_percent"] for h in rows], 0.4, label="study (Dash et al. 2023)",
           color="#3b6ea5")
    ax.bar([x + 0.2 for x in xs], [h["predicted_percent"] for h in rows], 0.4, label="paraplan prediction",
           color="#d9822b")
    ax.set_xticks(list(xs), [f"{h['model']}\n{h['gpus']} GCDs\n{h['layout']}" for h in rows])
    ax.set_ylabel("throughput (% of 191.5 TFLOP/s per GCD)")
    ax.set_title("Headline throughput: study vs paraplan")
    ax.legend(loc="lower left")
    return _save(fig, path)


def _stacked(ax, labels: list[str], times: list[dict]) -> None:
    bottom = [0.0] * len(labels)
    for part, color in PART_COLORS.items():
        vals = [t.get(part, 0.0) for t in times]
        if not any(vals):
            continue
        ax.bar(labels, vals, bottom=bottom, color=color, label=part)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]


def tp_png(r: dict, path: Path) -> Path:
    """Step-time breakdown per tp degree (left) and the cost of a 1 GB all-reduce (right)."""
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    rows = r["tp"]
    labels = [f"tp{x['tp']}" + (" (2 nodes)" if x["cross_node"] else "") for x in rows]
    _stacked(ax, labels, [x["time"] for x in rows])
    ax.set_ylabel("step time (s)")
    ax.set_title("175B, 128 GCDs, pp 8: where the step goes")
    ax.legend(fontsize=7, loc="lower right")
    rows2 = [x for x in rows if x["tp"] > 1]
    ax2.bar([f"tp{x['tp']}" for x in rows2], [x["allreduce_s_per_gb"] * 1e3 for x in rows2], color="#d9822b",
            label="1 GB all-reduce")
    ax2.set_ylabel("time of a 1 GB all-reduce (ms)")
    ax2.set_xlabel("tensor-parallel group")
    ax2.set_title("Cost per byte of tp communication")
    ax2.legend(loc="upper left")
    return _save(fig, path)


def scaling_png(r: dict, path: Path) -> Path:
    """Weak and strong scaling efficiency vs GCDs, with the study's numbers as markers."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (name, s) in zip(axes, r["scaling"].items(), strict=True):
        ax.plot(s["gpus"], [100 * p["efficiency"] for p in s["weak"]], "o-", color="#4c9f70",
                label="paraplan weak")
        for i, (gb, effs) in enumerate(s["strong"].items()):
            ax.plot(s["gpus"], [100 * e for e in effs], "s--", color=plt.cm.Oranges(0.4 + 0.18 * i),
                    label=f"paraplan strong, batch {gb}")
        ax.plot([s["gpus"][-1]], [100 * s["study_weak"]], "*", ms=13, color="#3b6ea5", label="study weak")
        ax.plot([s["gpus"][-1]], [100 * s["study_strong"]], "X", ms=10, color="#c0392b", label="study strong")
        ax.set_xlabel("GCDs")
        ax.set_ylabel("scaling efficiency (%)")
        ax.set_title(f"{name} ({s['layout']})")
        ax.set_ylim(50, 105)
        ax.legend(fontsize=7, loc="lower left")
    return _save(fig, path)


def memory_png(r: dict, path: Path) -> Path:
    """Peak memory per GCD (stacked parts) of the headline and best-plan configurations vs HBM."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    items = [(f"{h['model']}\nstudy layout", h["memory"]) for h in r["headline"]]
    items += [(f"{b['model']}\nbest plan", b["memory"]) for b in r["best"]]
    labels = [k for k, _ in items]
    bottom = [0.0] * len(items)
    for part, color in MEM_COLORS.items():
        vals = [m[part] / GIB for _, m in items]
        ax.bar(labels, vals, bottom=bottom, color=color, label=part)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.axhline(r["hbm_bytes"] / GIB, color="#c0392b", ls="--", label="HBM per GCD")
    ax.set_ylabel("peak memory per GCD (GiB)")  # GiB like the CLI tables
    ax.set_title("Memory per GCD at the worst pipeline stage")
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def timeline_png(sim, stages: int, label: str, path: Path) -> Path:
    """One simulated step: compute-stream events of each pipeline stage (the trace of simulate.run,
    colours of simulate/plot.py), stage 0 on top, with a legend of the event kinds."""
    from simulate.plot import COLORS

    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 0.35 * stages + 2.0))
    seen: dict[str, object] = {}
    for ev in sim.trace_events:
        if ev.get("ph") != "X" or ev.get("tid") != 0:
            continue
        kind = ev["name"].split(" ")[0]
        color = COLORS.get(kind, "#999999")
        ax.broken_barh([(ev["ts"] / 1e6, ev["dur"] / 1e6)], (stages - 1 - ev["pid"] - 0.4, 0.8),
                       facecolors=color)
        seen.setdefault(kind, color)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in seen.values()]
    ax.legend(handles, list(seen), loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(seen), fontsize=8)
    ax.set_yticks(range(stages), [f"stage {stages - 1 - i}" for i in range(stages)])
    ax.set_xlabel("time since step start (s)")
    ax.set_title(f"One simulated step, best 175B plan:\n{label}", loc="left")
    return _save(fig, path)
