"""Fit pricing parameters to what the validator (or a user's own job) measured, as an overlay on a base
hardware profile. One path for every source of jobs: traced jobs (planner.trace, validate.trace_fit), plus
optional microbenchmarks.

From the microbenchmarks (validate.microbench), with the cost model's own definitions (planner.pricing):
  GEMM efficiency      = 2mnk / ((t - overhead) * peak)             per shape, binned by size
  attention efficiency = executed FLOPs / ((t - overhead) * peak)   forward and backward
  memory efficiency    = 2 * bytes / t / hbm_bandwidth               (copy reads and writes)
  Adam throughput      = params / t
  collectives          t = phases * ((g-1) * alpha + (g-1)/g * S / (ring_bw * eff))   (alpha-beta,
                         Hockney 1994; ring algorithm, Thakur et al. 2005) fitted by least squares
                         (relative residuals) over all-reduce (2 phases), all-gather and reduce-scatter
  send-recv            t = S / (p2p_bw * eff) + alpha
Then, from the traces of every job but a held-out one, each class of the step from its own measurements
(validate.trace_fit): GEMM, attention, memory-bound and optimizer rates from the ops the jobs ran, the host
time between ops per priced kernel, the collective latency per call and the send/recv latency against the
pipeline's waits. What the jobs measured replaces the microbenchmarks' figure. Each is a pricing parameter of
the profile: it applies to every prediction, no per-layout factor. Torch-free.
"""

from __future__ import annotations

import datetime as _dt
import statistics
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from hwprofiles import load_hardware
from hwprofiles.loader import deep_merge, hardware_dir, hardware_from_dict, read_yaml
from planner.errors import SpecError
from planner.specs import HardwareProfile
from planner.topology import offnode_bandwidth_per_device_gbps, p2p_bandwidth_gbps, ring_bandwidth_gbps
from planner.work.ops import Attention

from .fit_microbench import gemm_efficiency_overlay
from .results import BenchResult
from .trace_fit import (
    TracedJob,
    class_groups,
    fit_collective_latency,
    fit_compute,
    fit_host,
    fit_optimizer,
    fit_p2p_latency,
    predict,
    predicted_groups,
)

PRICED_PRECISION = "bf16"  # JobSpec.training_spec() asks the cost model about bf16 (see job.py)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LayoutError(Model):
    """Predicted vs measured step time of one layout, before and after calibration (s, %)."""

    layout: str = Field(description="layout")
    held_out: bool = Field(description="kept out of the fit")
    measured_s: float = Field(description="measured median step time, s")
    measured_min_s: float | None = Field(None, description="fastest timed step, s")
    measured_max_s: float | None = Field(None, description="slowest timed step, s")
    predicted_before_s: float = Field(description="prediction with the base profile, s")
    predicted_after_s: float = Field(description="prediction with the overlay, s")
    error_before_pct: float = Field(description="100 * (predicted - measured) / measured, base profile")
    error_after_pct: float = Field(description="100 * (predicted - measured) / measured, with the overlay")


class ClassError(Model):
    """Measured vs predicted seconds per step of one class group of one job, before and after calibration."""

    layout: str = Field(description="layout")
    held_out: bool = Field(description="kept out of the fit")
    kind: str = Field(description="gemm, attention, memory-bound, optimizer, comm:<kind>, host or idle")
    measured_s: float = Field(description="measured seconds per step (mean over ranks of the median step), s")
    predicted_before_s: float = Field(description="predicted with the base profile, s")
    predicted_after_s: float = Field(description="predicted with the overlay, s")


class CalibrationReport(Model):
    """What ``paraplan calibrate`` fitted and how well it predicts."""

    base: str = Field(description="base hardware profile")
    overlay: dict[str, Any] = Field(description="the overlay written (profile keys, sources, calibration)")
    layouts: list[LayoutError] = Field(default_factory=list, description="per-job errors")
    classes: list[ClassError] = Field(default_factory=list, description="per job and class group, measured vs "
                                      "predicted seconds per step")
    held_out: str | None = Field(None, description="held-out layout")
    held_out_error_pct: list[float] = Field(default_factory=list, description="its error over repeats, %")
    notes: list[str] = Field(default_factory=list, description="what was clamped or skipped")


def base_profile_data(name: str) -> tuple[dict[str, Any], str]:
    """(YAML mapping, path) of a base profile given by name or path."""
    path = Path(name) if ("/" in name or name.endswith((".yaml", ".yml"))) else hardware_dir() / f"{name}.yaml"
    if not path.exists():
        load_hardware(name)  # raises the usual NotFoundError with suggestions
    return read_yaml(path), str(path)


def profile_with(base: dict[str, Any], overlay: dict[str, Any], source: str) -> HardwareProfile:
    """The base profile with ``overlay`` applied (the same merge ``load_hardware`` does)."""
    data = deep_merge(base, {k: v for k, v in overlay.items() if k not in ("calibration", "base")})
    return hardware_from_dict(data, source)


def _per_item(ranks: list[dict], key: str, fields: tuple[str, ...]) -> list[dict]:
    """Items of ``key`` merged over ranks: the slowest rank's seconds for each item."""
    merged: dict[tuple, dict] = {}
    for r in ranks:
        for item in r.get(key, []):
            ident = tuple(item[f] for f in fields)
            best = merged.get(ident)
            if best is None:
                merged[ident] = dict(item)
            else:
                for k, v in item.items():
                    if k.endswith("seconds") or k.endswith("_s"):
                        best[k] = max(best[k], v)
    return list(merged.values())


def _linear_fit(xs: list[tuple[float, float]], ys: list[float]) -> tuple[float, float]:
    """Least squares y ~ a*x0 + b*x1 on relative residuals (each row divided by y), a, b >= 0."""
    rows = [(x0 / y, x1 / y) for (x0, x1), y in zip(xs, ys)]
    s00 = sum(r[0] * r[0] for r in rows)
    s01 = sum(r[0] * r[1] for r in rows)
    s11 = sum(r[1] * r[1] for r in rows)
    t0 = sum(r[0] for r in rows)
    t1 = sum(r[1] for r in rows)
    det = s00 * s11 - s01 * s01
    if det > 0:
        a, b = (t0 * s11 - t1 * s01) / det, (t1 * s00 - t0 * s01) / det
        if a >= 0 and b > 0:
            return a, b
    b = t1 / s11 if s11 else 0.0  # alpha clamped at zero: slope only
    return 0.0, max(b, 1e-30)


def fit_collectives(samples: list[dict], profile: HardwareProfile) -> dict[str, float]:
    """Intra-node ``collective_latency_us`` and ``collective_efficiency`` (and inter-node ``latency_us``,
    ``efficiency`` when samples span nodes) from all-reduce / all-gather / reduce-scatter timings;
    intra-node ``p2p_latency_us`` and ``p2p_efficiency`` from send-recv timings."""
    out: dict[str, float] = {}
    node = profile.node
    for tier in ("intra", "inter"):
        xs, ys = [], []
        for s in samples:
            if s["kind"] == "send-recv" or (s["nodes"] > 1) != (tier == "inter"):
                continue
            phases = 2.0 if s["kind"] == "all-reduce" else 1.0
            if tier == "intra":
                g = s["group_size"]
                bw = ring_bandwidth_gbps(node, tuple(range(g))) * 1e9
                xs.append((phases * (g - 1), phases * (g - 1) / g * s["bytes"] / bw))
            else:
                k, g = s["nodes"], s["ranks_per_node"]
                bw = offnode_bandwidth_per_device_gbps(node, tuple(range(node.devices_per_node))) * 1e9
                xs.append((phases * (k - 1), phases * (k - 1) / k * (s["bytes"] / g) / bw))
            ys.append(s["seconds"])
        if len(ys) < 2:
            continue
        alpha, inv_eff = _linear_fit(xs, ys)
        eff = min(1.2 if tier == "intra" else 1.0, max(1e-4, 1.0 / inv_eff))
        if tier == "intra":
            out["node.collective_latency_us"], out["node.collective_efficiency"] = alpha * 1e6, eff
        else:
            out["network.latency_us"], out["network.efficiency"] = alpha * 1e6, eff
    p2p = [s for s in samples if s["kind"] == "send-recv" and s["nodes"] == 1]
    if len(p2p) >= 2 and node.devices_per_node > 1:
        bw = p2p_bandwidth_gbps(node, 0, 1) * 1e9
        alpha, inv_eff = _linear_fit([(1.0, s["bytes"] / bw) for s in p2p], [s["seconds"] for s in p2p])
        out["node.p2p_latency_us"] = alpha * 1e6
        out["node.p2p_efficiency"] = min(1.0, max(1e-4, 1.0 / inv_eff))
    return out


def fit_device(bench: BenchResult, profile: HardwareProfile) -> tuple[dict[str, Any], list[str]]:
    """Device fields (dotted path -> value) from the compute microbenchmarks, and notes on clamping."""
    ranks, dev, notes = bench.ranks, profile.device, []
    peak = dev.peak_tflops.for_dtype(PRICED_PRECISION) * 1e12
    overhead = max(r["overhead_s"] for r in ranks)
    out: dict[str, Any] = {"device.kernel_overhead_us": overhead * 1e6}

    def busy(t: float) -> float:  # time net of the per-op overhead the pricer adds back
        return max(t - overhead, 0.1 * t)

    samples = []
    for g in _per_item(ranks, "gemm", ("m", "n", "k")):
        eff = 2.0 * g["m"] * g["n"] * g["k"] / (busy(g["seconds"]) * peak)
        samples.append((2.0 * g["m"] * g["n"] * g["k"] / 1e9, eff, min(g["m"], g["n"], g["k"])))
    if samples:
        out["device.gemm_efficiency"] = gemm_efficiency_overlay(samples, notes)
    fwd, bwd = [], []
    for a in _per_item(ranks, "attention", ("batch_heads", "seq", "head_dim")):
        shape = (a["batch_heads"], a["seq"], a["seq"], a["head_dim"])
        fwd.append(Attention("attn", *shape, "fwd").executed_flops / (busy(a["fwd_s"]) * peak))
        bwd.append(Attention("attn", *shape, "bwd_input").executed_flops / (busy(a["bwd_s"]) * peak))
    if fwd:
        out["device.attention_efficiency"] = min(1.0, statistics.median(fwd))
        out["device.attention_backward_efficiency"] = min(1.0, statistics.median(bwd))
    copies = _per_item(ranks, "copy", ("bytes",))
    if copies:
        bw = max(2.0 * c["bytes"] / c["seconds"] for c in copies) / 1e9  # GB/s, best size (streaming)
        if bw > dev.hbm_bandwidth_gbps:
            out["device.hbm_bandwidth_gbps"], out["device.memory_efficiency"] = bw, 1.0
            notes.append(f"measured copy bandwidth {bw:.1f} GB/s exceeds the base figure; peak raised to it")
        else:
            out["device.memory_efficiency"] = bw / dev.hbm_bandwidth_gbps
    opt = [r["optimizer"] for r in ranks if "optimizer" in r]
    if opt:
        out["device.optimizer_params_per_s"] = min(o["params"] / o["seconds"] for o in opt)
    return out, notes


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{'device.x': 1} -> {'device': {'x': 1}}."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return float(f"{v:.6g}")
    if isinstance(v, list):
        return [_round(x) for x in v]
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    return v


def _fit_traces(jobs: list[TracedJob], base: dict[str, Any], path: str, flat: dict[str, Any],
                notes: list[str]) -> dict[str, str]:
    """Fit from the traced jobs into ``flat`` (validate.trace_fit, in its order); returns what each value
    was fitted from (for its source)."""
    def profile_of(extra: dict[str, float] | None = None) -> HardwareProfile:
        values = {**flat, **(extra or {})}
        return profile_with(base, {**nest(values), "sources": {p: "being fitted" for p in values}}, path)

    what: dict[str, str] = {}
    compute = fit_compute(jobs, profile_of(), notes)
    dispatch_s = compute.pop("device.kernel_overhead_us") * 1e-6
    flat.update(compute)
    what.update({p: "the traced ops of" for p in compute})
    rate = fit_optimizer(jobs)
    if rate:
        flat["device.optimizer_params_per_s"], what["device.optimizer_params_per_s"] = rate, "the optimizer time of"
    host = fit_host(jobs, profile_of)
    per_call = 0.0
    if host is not None:
        per_kernel, per_call = host
        flat["device.kernel_overhead_us"] = (dispatch_s + per_kernel) * 1e6
        what["device.kernel_overhead_us"] = "the time inside each op and the host time between ops of"
        notes.append(f"device.kernel_overhead_us = {(dispatch_s + per_kernel) * 1e6:.1f}: {dispatch_s * 1e6:.1f} us "
                     f"inside each op + {per_kernel * 1e6:.1f} us of host time per priced kernel; host time per "
                     f"collective call {per_call * 1e6:.0f} us (in the collective latency)")
    for p, v in fit_collective_latency(jobs, profile_of, per_call).items():
        flat[p], what[p] = v, "the collective calls (waits and host time around them) of"
    for p, v in fit_p2p_latency(jobs, profile_of).items():
        flat[p], what[p] = v, "the send/recv waits of"
    return what


def _class_rows(job: TracedJob, before: Any, after: Any, held_out: bool) -> list[ClassError]:
    """Measured vs predicted seconds per class group of one job (validate.trace_fit.class_groups)."""
    measured = class_groups(job.run.classes())
    pred_b, pred_a = predicted_groups(before), predicted_groups(after)
    rows = []
    for cls in sorted(set(measured) | set(pred_b), key=lambda c: -max(measured.get(c, 0.0), pred_a.get(c, 0.0))):
        rows.append(ClassError(layout=job.name, held_out=held_out, kind=cls, measured_s=measured.get(cls, 0.0),
                               predicted_before_s=pred_b.get(cls, 0.0), predicted_after_s=pred_a.get(cls, 0.0)))
    return rows


def calibrate(base_name: str, bench: BenchResult | None, jobs: list[TracedJob], held_out: str | None,
              date: str | None = None) -> CalibrationReport:
    """Fit an overlay for ``base_name`` from microbenchmarks (if any) and traced jobs (``held_out`` layout kept
    out of the fit and reported separately); values measured in the jobs replace the microbenchmarks'.
    Raises SpecError when there is nothing to fit."""
    base, path = base_profile_data(base_name)
    base_prof = hardware_from_dict(base, path)
    day = date or _dt.date.today().isoformat()
    notes: list[str] = []
    flat: dict[str, Any] = {}
    meta = bench.ranks[0] if bench is not None and bench.ranks else {}
    if meta:
        device_fit, device_notes = fit_device(bench, base_prof)
        flat.update(device_fit)
        notes += device_notes
        flat.update(fit_collectives([c for r in bench.ranks for c in r.get("collectives", [])], base_prof))
    what = f"measured by paraplan validate on {day}"
    sources = {p: f"{what} ({meta.get('device', 'cpu')}, {meta.get('backend', 'gloo')}, "
               f"{meta.get('world', '?')} ranks, microbenchmarks)" for p in flat}
    fit_jobs = [j for j in jobs if j.name != held_out]
    if fit_jobs:
        fitted = _fit_traces(fit_jobs, base, path, flat, notes)
        names = sorted({j.name for j in fit_jobs})
        for p, how in fitted.items():
            sources[p] = f"{what}: {how} {len(fit_jobs)} traced jobs ({', '.join(names)}; held out: {held_out})"
    if not flat:
        raise SpecError("nothing to fit: no microbenchmarks and no traced jobs", field="calibrate")
    overlay = _round(nest(flat))
    overlay["sources"] = sources
    device = fit_jobs[0].run.device if fit_jobs else meta.get("device", "")
    overlay["calibration"] = {
        "tool": "paraplan calibrate", "date": day, "base": base_prof.name, "device": device,
        "backend": meta.get("backend", "") or (fit_jobs[0].backend if fit_jobs else ""),
        "ranks": max((j.layout.gpus for j in fit_jobs), default=meta.get("world", 0)),
        "fitted_layouts": sorted({j.name for j in fit_jobs}), "held_out_layout": held_out,
    }
    after = profile_with(base, overlay, path)
    rows, classes = [], []
    for j in jobs:
        est_b, est_a = predict(j, base_prof), predict(j, after)
        m = j.measured_step_s
        rows.append(LayoutError(
            layout=j.name, held_out=j.name == held_out, measured_s=m, measured_min_s=j.step_min_s,
            measured_max_s=j.step_max_s, predicted_before_s=est_b.step_time_s, predicted_after_s=est_a.step_time_s,
            error_before_pct=100 * (est_b.step_time_s - m) / m, error_after_pct=100 * (est_a.step_time_s - m) / m))
        classes += _class_rows(j, est_b, est_a, j.name == held_out)
        notes += [f"{j.name}: {n}" for n in j.notes + j.run.notes]
    held = [r.error_after_pct for r in rows if r.held_out]
    overlay["calibration"]["held_out_error_pct"] = [round(e, 2) for e in held]
    return CalibrationReport(base=base_prof.name, overlay=overlay, layouts=rows, classes=classes, held_out=held_out,
                             held_out_error_pct=held, notes=list(dict.fromkeys(notes)))


def overlay_yaml(report: CalibrationReport) -> str:
    """The overlay as YAML text (profile keys first, then sources, then the calibration block)."""
    header = (f"# Calibration overlay for '{report.base}' written by paraplan calibrate.\n"
              f"# Apply with: --hardware {report.base} --calibration THIS_FILE (the base profile is not edited).\n")
    return header + yaml.safe_dump(report.overlay, sort_keys=False, width=110)
