"""PNG of the pipeline schedule (matplotlib is an optional extra; imported only here)."""

from __future__ import annotations

from pathlib import Path

COLORS = {"forward": "#4c9f70", "backward": "#3b6ea5", "backward-input": "#3b6ea5",
          "backward-weight": "#9b59b6", "optimizer": "#555555"}


def plot_schedule(events: list[dict], stages: int, path: str | Path, title: str = "") -> Path:
    """Draw the compute-stream events of each stage as bars (stage 0 on top); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(12, 0.35 * stages + 1.5))
    kinds: dict[str, str] = {}
    for ev in events:
        if ev.get("ph") != "X" or ev.get("tid") != 0:
            continue
        kind = ev["name"].split(" ")[0]
        kinds.setdefault(kind, COLORS.get(kind, "#999999"))
        ax.broken_barh([(ev["ts"] / 1e6, ev["dur"] / 1e6)], (stages - 1 - ev["pid"] - 0.4, 0.8),
                       facecolors=COLORS.get(kind, "#999999"))
    ax.set_yticks(range(stages), [f"stage {stages - 1 - i}" for i in range(stages)])
    ax.set_xlabel("time (s)")
    ax.set_title(title or "pipeline schedule")
    if kinds:  # one entry per kind of bar drawn (backward and backward-input share a colour)
        ax.legend(handles=[Patch(facecolor=color, label=kind) for kind, color in kinds.items()],
                  loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
