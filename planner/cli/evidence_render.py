"""How ``plan`` and ``estimate`` show the evidence behind an estimate (planner.evidence): a column
and an MFU mark on each plan row, a line under an estimate, the same in ``--json``."""

from __future__ import annotations

from rich.text import Text

from ..evidence import Evidence
from ..search.priced_evidence import priced_evidence

#: Appended to an MFU above the best measured MFU of its recipe x hardware x precision.
ABOVE_MARK = "↑"


def plan_evidence(result, hardware) -> dict[int, Evidence]:
    """Evidence of every shown plan (by rank) and of the reference (key 0)."""
    out = {p.rank: priced_evidence(hardware, p.training, p.layout, p.gpus, p.estimate.mfu) for p in result.plans}
    if result.reference is not None:
        r = result.reference
        out[0] = priced_evidence(hardware, r.training, r.layout, r.gpus, r.estimate.mfu)
    return out


def evidence_cell(ev: Evidence) -> str:
    """``3 runs +4.7%``, or ``0; near 3 +4.7%`` when no measured run shares the class (the nearest
    class's runs, planner.evidence.table)."""
    if ev.rows:
        return f"{ev.rows} run{'s' if ev.rows > 1 else ''} {ev.median_error_pct:+.1f}%"
    if ev.nearest_rows:
        return f"0; near {ev.nearest_rows} {ev.nearest_median_error_pct:+.1f}%"
    return "0"


def mfu_cell(mfu: float, ev: Evidence | None) -> str:
    """The MFU, marked when above the best measured one of its scope."""
    return f"{mfu:.1%}" + (ABOVE_MARK if ev is not None and ev.above_best_measured else "")


def plan_notes(evidence: dict[int, Evidence]) -> list[Text]:
    """Lines under the plans table: what the evidence column and the mark mean."""
    lines = [Text("evidence: measured runs of the plan's class (recipe, hardware family, tp/pp/cp/ep on, dp sharding, "
                  "recompute, precision, attention kernel, scale band) and their median throughput error (+ = paraplan "
                  "predicted faster); '0; near N' = none of the class, N of the nearest; ranking is by prediction only",
                  style="dim")]
    above = [ev for ev in evidence.values() if ev.above_best_measured]
    if above:
        ev = max(above, key=lambda e: e.predicted_mfu)
        lines.append(Text(f"{ABOVE_MARK} MFU above the best measured MFU of {ev.ceiling_scope} "
                          f"({ev.best_measured_mfu:.1%}, {ev.best_measured_ref}): no measured run has gone that "
                          "fast, so treat the figure as an upper estimate", style="yellow"))
    return lines


def estimate_line(ev: Evidence) -> Text:
    """One line under an estimate: its class and what backs it."""
    text = Text(f"evidence: {ev.layout_class}: {ev.summary()}", style="dim")
    note = ev.ceiling_note()
    if note:
        text.append(f"\n{ABOVE_MARK} {note}; treat it as an upper estimate", style="yellow")
    return text


def estimate_evidence(scenario, est) -> Evidence:
    """The Evidence of one estimate of ``scenario``."""
    return priced_evidence(scenario.hardware, scenario.training, scenario.layout, scenario.gpus, est.mfu)
