"""Chrome / Perfetto trace-event JSON (https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU):
one process per pipeline stage, threads for the compute stream, the forward and backward sends and
the data-parallel stream; complete events ("X", µs timestamps) and flow arrows ("s"/"f") for sends."""

from __future__ import annotations

import json

THREADS = {0: "compute", 1: "send activations", 2: "send gradients", 3: "data-parallel comm"}
REQUIRED = {"X": ("name", "ph", "ts", "dur", "pid", "tid"), "s": ("name", "ph", "ts", "pid", "tid", "id"),
            "f": ("name", "ph", "ts", "pid", "tid", "id"), "M": ("name", "ph", "pid", "args")}


def trace_document(events: list[dict], stages: int, title: str, labels: dict[int, str] | None = None) -> dict:
    """The JSON object: metadata naming processes and threads (``labels``: what slows a stage, added to
    its process name), then ``events``."""
    meta = []
    labels = labels or {}
    for s in range(stages):
        name = f"stage {s}" + (f" — {labels[s]}" if s in labels else "")
        meta.append({"name": "process_name", "ph": "M", "pid": s, "args": {"name": name}})
        meta.append({"name": "process_sort_index", "ph": "M", "pid": s, "args": {"sort_index": s}})
        for tid, name in THREADS.items():
            meta.append({"name": "thread_name", "ph": "M", "pid": s, "tid": tid, "args": {"name": name}})
    return {"traceEvents": meta + events, "displayTimeUnit": "ms", "otherData": {"title": title}}


def trace_json(doc: dict) -> str:
    """Compact JSON text of a trace document."""
    return json.dumps(doc, separators=(",", ":"))


def validate_trace(doc: dict) -> list[str]:
    """Problems with ``doc`` under the trace-event format rules (empty list = valid): required keys
    per phase, numeric non-negative µs timestamps and durations, every flow start matched by one
    flow finish with the same id that is not earlier."""
    problems = []
    events = doc.get("traceEvents")
    if not isinstance(events, list):
        return ["traceEvents missing or not a list"]
    starts, finishes = {}, {}
    for n, ev in enumerate(events):
        ph = ev.get("ph")
        if ph not in REQUIRED:
            problems.append(f"event {n}: unknown phase {ph!r}")
            continue
        missing = [k for k in REQUIRED[ph] if k not in ev]
        if missing:
            problems.append(f"event {n} ({ph}): missing {missing}")
            continue
        for key in ("ts", "dur"):
            if key in ev and (not isinstance(ev[key], (int, float)) or ev[key] < 0):
                problems.append(f"event {n}: {key} must be a number >= 0 (µs)")
        if ph == "s":
            starts.setdefault(ev["id"], []).append(ev["ts"])
        elif ph == "f":
            finishes.setdefault(ev["id"], []).append(ev["ts"])
    for fid, ts in starts.items():
        fin = finishes.get(fid)
        if not fin or len(fin) != len(ts):
            problems.append(f"flow {fid}: start without a matching finish")
        elif min(fin) < max(ts):
            problems.append(f"flow {fid}: finishes before it starts")
    problems.extend(f"flow {fid}: finish without start" for fid in finishes if fid not in starts)
    problems.extend(unbound_flows(events))
    return problems


def unbound_flows(events: list[dict]) -> list[str]:
    """Flow events that bind to no slice: each flow start and each finish (``bp: e``, the enclosing-slice
    binding) must fall inside an ``X`` slice of its own pid and tid, so the arrow is drawn end to end."""
    slices: dict[tuple, list[tuple[float, float]]] = {}
    for ev in events:
        if ev.get("ph") == "X" and "dur" in ev:
            slices.setdefault((ev.get("pid"), ev.get("tid")), []).append((ev["ts"], ev["ts"] + ev["dur"]))
    out = []
    for ev in events:
        if ev.get("ph") in ("s", "f") and "ts" in ev:
            spans = slices.get((ev.get("pid"), ev.get("tid")), [])
            if not any(a <= ev["ts"] <= b for a, b in spans):
                out.append(f"flow {ev.get('id')}: {ev['ph']} at {ev['ts']} us binds to no slice of "
                           f"pid {ev.get('pid')} tid {ev.get('tid')}")
    return out
