"""Explanations derived from the numbers of a search: why the best plan beats the runner-up (and a
reference), what the ranking says about tensor parallelism and the pipeline bubble, and what
would make an infeasible job fit. No conclusion is written in advance: every sentence compares
fields of Estimates the cost model returned, and lessons are stated only where the numbers show
them.
"""

from __future__ import annotations

from ..specs import HardwareProfile, ModelSpec, TrainingSpec
from .result import Plan
from .scan import gpu_counts, scan_memory

GIB = 2**30
FIELD_TEXT = {
    "compute": "compute", "tp_comm": "tensor-parallel communication", "cp_comm": "context-parallel K/V exchange", "pp_bubble": "pipeline bubble",
    "pp_comm": "pipeline send/recv", "dp_comm_exposed": "exposed data-parallel/ZeRO communication",
    "optimizer": "optimizer step", "other": "other",
}


def _fmt_s(s: float) -> str:
    return f"{s:.2f} s" if abs(s) >= 1 else f"{s * 1e3:.1f} ms"


def _diff_context(field: str, a: Plan, b: Plan) -> str:
    """The layout differences relevant to a time field, as ``(pp 32 vs 16, ...)`` (a = the loser)."""
    la, lb, ta, tb = a.layout, b.layout, a.training, b.training
    pairs = {
        "pp_bubble": [("pp", la.pp, lb.pp), ("micro-batches", a.estimate.micro_batches, b.estimate.micro_batches),
                      ("schedule", la.schedule, lb.schedule), ("vpp", la.vpp, lb.vpp)],
        "pp_comm": [("pp", la.pp, lb.pp), ("vpp", la.vpp, lb.vpp), ("sp", la.sequence_parallel,
                                                                   lb.sequence_parallel)],
        "cp_comm": [("cp", la.cp, lb.cp), ("cp kind", la.cp_kind, lb.cp_kind), ("tp", la.tp, lb.tp)],
        "tp_comm": [("tp", la.tp, lb.tp), ("sp", la.sequence_parallel, lb.sequence_parallel),
                    ("recompute", ta.recompute, tb.recompute)],
        "compute": [("micro-batch", ta.micro_batch_size, tb.micro_batch_size), ("recompute", ta.recompute,
                                                                                tb.recompute),
                    ("tp", la.tp, lb.tp)],
        "dp_comm_exposed": [("dp", la.dp, lb.dp), ("zero", la.effective_zero_stage, lb.effective_zero_stage),
                            ("pp", la.pp, lb.pp)],
        "optimizer": [("zero", la.effective_zero_stage, lb.effective_zero_stage), ("dp", la.dp, lb.dp)],
    }.get(field, [])
    parts = [f"{n} {x} vs {y}" for n, x, y in pairs if x != y]
    return f" ({', '.join(parts)})" if parts else ""


def compare(loser: Plan, winner: Plan, who: str = "runner-up", n: int = 2) -> str:
    """One line: the time fields where ``loser`` pays most over ``winner``."""
    ta, tb = loser.estimate.time.model_dump(), winner.estimate.time.model_dump()
    diffs = sorted(((ta[k] - tb[k], k) for k in ta), reverse=True)
    gap = loser.estimate.step_time_s - winner.estimate.step_time_s
    paid = [f"{_fmt_s(d)} more {FIELD_TEXT[k]}{_diff_context(k, loser, winner)}" for d, k in diffs[:n]
            if d > 1e-3 * max(gap, 1e-12) and d > 0]
    if gap <= 0 or not paid:
        mem_gap = loser.estimate.peak_memory_bytes - winner.estimate.peak_memory_bytes
        return (f"{who} ({loser.label}) is as fast within {abs(gap) / winner.estimate.step_time_s:.2%}; "
                f"the winner holds {mem_gap / GIB:+.1f} GiB less per GPU")
    saved = [f"{_fmt_s(-d)} of {FIELD_TEXT[k]}" for d, k in diffs[-1:] if d < -1e-3 * gap]
    tail = f" (it saves {saved[0]})" if saved else ""
    return (f"{who} ({loser.label}) is {gap / winner.estimate.step_time_s:.1%} slower per step "
            f"({_fmt_s(loser.estimate.step_time_s)} vs {_fmt_s(winner.estimate.step_time_s)}): it pays "
            + " and ".join(paid) + tail)


def tp_lesson(ranked: list[Plan], hardware: HardwareProfile, allow_cross: bool) -> str | None:
    """Best plan per tensor-parallel degree, with its exposed TP communication share."""
    best_by_tp: dict[int, Plan] = {}
    for p in ranked:
        best_by_tp.setdefault(p.layout.tp, p)
    if len(best_by_tp) < 2:
        return None
    node = hardware.node.devices_per_node
    parts = []
    for tp in sorted(best_by_tp):
        e = best_by_tp[tp].estimate
        parts.append(f"tp{tp} {e.tokens_per_s:,.0f} tok/s (tp comm {e.time.tp_comm / e.step_time_s:.1%})")
    shares = [best_by_tp[t].estimate.time.tp_comm / best_by_tp[t].estimate.step_time_s for t in sorted(best_by_tp)]
    rising = all(b >= a for a, b in zip(shares, shares[1:], strict=False))
    text = "best plan per tensor-parallel degree: " + ", ".join(parts)
    if rising:
        text += "; exposed TP communication grows with tp"
    if not allow_cross:
        text += f"; tp kept within a node ({node} GPUs, --allow-cross-node-tp to search beyond)"
    return text


def bubble_lesson(ranked: list[Plan]) -> str | None:
    """Bubble share against micro-batches per step for the best plan's structure."""
    best = ranked[0]
    if best.layout.pp == 1:
        return None
    same = {}
    for p in ranked:
        if p.layout == best.layout and p.gpus == best.gpus:
            same.setdefault(p.estimate.micro_batches, p)
    if len(same) < 2:
        return None
    ms = sorted(same)
    fracs = [same[m].estimate.bubble_fraction for m in ms]
    parts = ", ".join(f"{m} micro-batches -> {f:.1%}" for m, f in zip(ms, fracs, strict=False))
    shrinking = all(b < a for a, b in zip(fracs, fracs[1:], strict=False))
    verdict = "the pipeline bubble shrinks with more micro-batches per step" if shrinking else \
        "pipeline bubble against micro-batches per step"
    return f"{verdict} ({best.layout.describe()}): {parts}"


def explain(ranked: list[Plan], reference: Plan | None, hardware: HardwareProfile, c) -> list[str]:
    """Sentences for the report, each derived from the ranked plans' estimates."""
    lines = []
    best = ranked[0]
    if len(ranked) > 1:
        lines.append(compare(ranked[1], best))
    if reference is not None:
        ref = reference.estimate
        if ref.step_time_s >= best.estimate.step_time_s:
            lines.append(compare(reference, best, who="reference"))
        else:
            lines.append(f"the reference ({reference.label}) is {best.estimate.step_time_s / ref.step_time_s - 1:.1%}"
                         f" faster than the best plan found under the constraints"
                         + ("" if ref.fits else " but does not fit in memory"))
    for lesson in (tp_lesson(ranked, hardware, c.allow_cross_node_tp), bubble_lesson(ranked)):
        if lesson:
            lines.append(lesson)
    return lines


def framework_refusals(framework: str | None, rules: dict[str, list]) -> str:
    """The framework rules that removed layouts, most first: count, reason and source line."""
    if not rules:
        return ""
    parts = [f"{rule} removed {n} layout{'s' if n > 1 else ''}: {reason} [{source}]"
             for rule, (n, source, reason) in sorted(rules.items(), key=lambda kv: -kv[1][0])]
    return f"--framework {framework} refuses them: " + "; ".join(parts)


def infeasible_message(model: ModelSpec, hardware: HardwareProfile, gpus: int, training: TrainingSpec, c,
                       scan) -> tuple[str, dict]:
    """The exit-1 message: the smallest shortfall and what would make it fit (each from a check)."""
    if not scan.closest:
        msg = (f"no valid layout of {model.name} on {gpus} GPUs with global batch {training.global_batch_size} "
               f"(rejected: {scan.counts.invalid} invalid, {scan.counts.constraint} by constraints)")
        refused = framework_refusals(c.framework, scan.counts.framework)
        return msg + ("; " + refused if refused else ""), {"rejected": vars(scan.counts)}
    closest = scan.closest
    top = closest["any"]
    cand = top.candidate
    msg = (f"no layout of {model.name} fits {gpus} x {hardware.name}: the closest "
           f"({cand.layout.describe()} mb{cand.training.micro_batch_size} {cand.training.recompute}) needs "
           f"{top.peak_bytes / GIB:.1f} GiB per GPU of {top.usable_bytes / GIB:.1f} GiB usable "
           f"(short by {top.shortfall_bytes / GIB:.1f} GiB).")
    hints = []
    details = {"shortfall_bytes": top.shortfall_bytes, "peak_bytes": top.peak_bytes,
               "usable_bytes": top.usable_bytes, "closest_layout": cand.layout.model_dump(mode="json")}
    more = None
    g = gpus
    for _ in range(16):
        g *= 2
        trial = scan_memory(model, hardware, gpu_counts(g, hardware, "throughput"), training, c,
                            stop_at_first=True)
        if trial.survivors:
            more = g
            break
    if more:
        hints.append(f"{more} GPUs (the smallest doubling of {gpus} at which a layout of this space fits)")
        details["gpus_needed"] = more
    z3 = closest.get("zero:3")
    if z3 is not None:
        hints.append(f"ZeRO-3/FSDP (pp 1) alone still lacks {z3.shortfall_bytes / GIB:.1f} GiB")
    elif c.zero is not None and c.zero < 3:
        hints.append("lifting --zero to allow ZeRO-3/FSDP at pp 1")
    full = closest.get("recompute:full")
    if full is not None and top.candidate.training.recompute != "full":
        hints.append(f"full recompute reaches {full.peak_bytes / GIB:.1f} GiB")
    if top.optimizer_bytes > 0:
        enough = "enough" if top.optimizer_bytes >= top.shortfall_bytes else "not enough"
        hints.append(f"offloading optimizer state to CPU frees {top.optimizer_bytes / GIB:.1f} GiB per GPU "
                     f"({enough})")
    if hints:
        msg += " Would fit or get closer: " + "; ".join(hints) + "."
    details["hints"] = hints
    return msg, details
