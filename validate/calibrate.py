"""Fit pricing parameters to what the validator measured, as an overlay on a base hardware profile.

From the microbenchmarks (validate.microbench), with the cost model's own definitions (planner.pricing):
  GEMM efficiency      = 2mnk / ((t - overhead) * peak)             per shape, binned by size
  attention efficiency = executed FLOPs / ((t - overhead) * peak)   forward and backward
  memory efficiency    = 2 * bytes / t / hbm_bandwidth               (copy reads and writes)
  Adam throughput      = params / t
  collectives          t = phases * ((g-1) * alpha + (g-1)/g * S / (ring_bw * eff))   (alpha-beta,
                         Hockney 1994; ring algorithm, Thakur et al. 2005) fitted by least squares
                         (relative residuals) over all-reduce (2 phases), all-gather and reduce-scatter
  send-recv            t = S / (p2p_bw * eff) + alpha
Then, from whole training steps of every layout except a held-out one, ``kernel_overhead_us`` (the
fixed cost per op: on a CPU, PyTorch dispatch and Python), the per-collective-step latency (on a CPU
the latency a collective costs inside PyTorch, DTensor redistribution included, is far above the bare
gloo figure) and the send/recv latency ``p2p_latency_us`` (pipeline transfers, which pay no DTensor
redistribution) are fitted jointly: least squares on the log errors of the predicted step times
(Levenberg-Marquardt in log10(us), started at the microbenchmark figures). Each is a pricing
parameter of the profile: it applies to every prediction, no per-layout factor. Torch-free.
"""

from __future__ import annotations

import datetime as _dt
import math
import statistics
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hwprofiles.loader import deep_merge, hardware_dir, hardware_from_dict, read_yaml
from planner.errors import SpecError
from planner.fit_microbench import fit_gemm_curve
from planner.specs import HardwareProfile
from planner.topology import offnode_bandwidth_per_device_gbps, p2p_bandwidth_gbps, ring_bandwidth_gbps
from planner.work.ops import Attention

from .results import BenchResult, JobResult

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


class CalibrationReport(Model):
    """What ``paraplan calibrate`` fitted and how well it predicts."""

    base: str = Field(description="base hardware profile")
    overlay: dict[str, Any] = Field(description="the overlay written (profile keys, sources, calibration)")
    layouts: list[LayoutError] = Field(default_factory=list, description="per-job errors")
    held_out: str | None = Field(None, description="held-out layout")
    held_out_error_pct: list[float] = Field(default_factory=list, description="its error over repeats, %")
    notes: list[str] = Field(default_factory=list, description="what was clamped or skipped")


def base_profile_data(name: str) -> tuple[dict[str, Any], str]:
    """(YAML mapping, path) of a base profile given by name or path."""
    path = Path(name) if ("/" in name or name.endswith((".yaml", ".yml"))) else hardware_dir() / f"{name}.yaml"
    if not path.exists():
        from hwprofiles import load_hardware

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
        curve = fit_gemm_curve(samples)
        if any(p["efficiency"] > 1 for p in curve):
            notes.append("GEMM efficiency above 1 clamped: the base profile's peak is below what was measured")
        out["device.gemm_efficiency"] = [{"gflop": p["gflop"], "efficiency": round(min(1.0, p["efficiency"]), 6)}
                                         for p in curve]
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


def predict_step(job: JobResult, profile: HardwareProfile) -> float:
    """The cost model's step time for a measured job, s."""
    from planner.cost import estimate

    spec = job.job
    return estimate(spec.effective_model(), profile, spec.training_spec(), spec.layout).step_time_s


# Bounds of the step-time fit, log10(us): 0.1 us .. 100 ms per op, collective or transfer.
LOG10_US_BOUNDS = (-1.0, 5.0)


def step_fit_paths(jobs: list[JobResult]) -> list[str]:
    """Parameters the step times can pin down: the per-op overhead always; the per-collective latency
    when some job communicates every layer (tp > 1) or over dp; the send/recv latency when some job
    runs a pipeline (pp > 1)."""
    paths = ["device.kernel_overhead_us"]
    if any(j.job.layout.tp > 1 or j.job.layout.dp > 1 for j in jobs):
        paths.append("node.collective_latency_us")
    if any(j.job.layout.pp > 1 for j in jobs):
        paths.append("node.p2p_latency_us")
    return paths


def _start_value(path: str, flat: dict[str, Any], base: HardwareProfile) -> float:
    """Where the step fit starts: the microbenchmark figure, else the base profile's (us)."""
    if flat.get(path) is not None:
        return float(flat[path])
    if path == "node.p2p_latency_us":
        return base.node.p2p_latency_us if base.node.p2p_latency_us is not None else base.node.collective_latency_us
    section, field = path.split(".")
    return float(getattr(getattr(base, section), field))


def least_squares_log(residuals, x0: list[float], bounds: tuple[float, float], iters: int = 40) -> list[float]:
    """Minimise sum(residuals(x)**2) by Levenberg-Marquardt (Marquardt 1963, doi:10.1137/0111030) with a
    forward-difference Jacobian, every x kept inside ``bounds``. Directions the residuals do not see
    stay where they start (the damping term)."""
    import numpy as np

    lo, hi = bounds
    x = np.clip(np.asarray(x0, dtype=float), lo, hi)
    r = np.asarray(residuals(list(x)))
    cost, lam, h = float(r @ r), 1e-3, 1e-4
    for _ in range(iters):
        jac = np.empty((len(r), len(x)))
        for i in range(len(x)):
            step = h if x[i] + h <= hi else -h
            xi = x.copy()
            xi[i] += step
            jac[:, i] = (np.asarray(residuals(list(xi))) - r) / step
        grad, hess = jac.T @ r, jac.T @ jac
        improved = False
        while lam < 1e8:
            delta = np.linalg.solve(hess + lam * (np.diag(np.diag(hess)) + 1e-9 * np.eye(len(x))), -grad)
            trial = np.clip(x + delta, lo, hi)
            r_trial = np.asarray(residuals(list(trial)))
            c_trial = float(r_trial @ r_trial)
            if c_trial < cost:
                x, r, improved = trial, r_trial, cost - c_trial > 1e-12 * max(cost, 1e-30)
                cost, lam = c_trial, max(lam / 10, 1e-9)
                break
            lam *= 10
        if not improved:
            break
    return list(x)


def fit_step_params(jobs: list[JobResult], base: dict[str, Any], flat: dict[str, Any], source: str
                    ) -> dict[str, float]:
    """Values (us) of ``step_fit_paths`` minimising, jointly, the sum over ``jobs`` of squared log errors
    of the predicted step times, log(predicted / measured); fitted in log10(us) by least squares."""
    paths = step_fit_paths(jobs)
    base_prof = hardware_from_dict(base, source)
    x0 = [math.log10(max(_start_value(p, flat, base_prof), 0.1)) for p in paths]

    def residuals(x: list[float]) -> list[float]:
        prof = profile_with(base, nest({**flat, **{p: 10 ** v for p, v in zip(paths, x)}}), source)
        return [math.log(predict_step(j, prof) / j.step_time_s) for j in jobs]

    best = least_squares_log(residuals, x0, LOG10_US_BOUNDS)
    return {p: 10 ** v for p, v in zip(paths, best)}


def calibrate(base_name: str, bench: BenchResult | None, jobs: list[JobResult], held_out: str | None,
              date: str | None = None) -> CalibrationReport:
    """Fit an overlay for ``base_name`` from microbenchmarks and measured jobs (``held_out`` layout kept
    out of the fit, reported separately). Raises SpecError when there is nothing to fit."""
    base, path = base_profile_data(base_name)
    base_prof = hardware_from_dict(base, path)
    day = date or _dt.date.today().isoformat()
    notes: list[str] = []
    flat: dict[str, Any] = {}
    if bench is not None and bench.ranks:
        device_fit, device_notes = fit_device(bench, base_prof)
        flat.update(device_fit)
        notes += device_notes
        flat.update(fit_collectives([c for r in bench.ranks for c in r.get("collectives", [])], base_prof))
    usable = [j for j in jobs if j.step_time_s and not j.partial]
    fit_jobs = [j for j in usable if j.layout != held_out]
    step_paths: dict[str, float] = {}
    if fit_jobs:
        micro = {p: flat.get(p) for p in step_fit_paths(fit_jobs)}
        step_paths = fit_step_params(fit_jobs, base, flat, path)
        flat.update(step_paths)
        for p, v in step_paths.items():
            was = f" (microbenchmarks gave {micro[p]:.1f})" if micro.get(p) is not None else ""
            notes.append(f"{p} = {v:.1f} fitted to the step times of "
                         f"{', '.join(sorted({j.layout for j in fit_jobs}))}{was}")
        layouts = len({j.layout for j in fit_jobs})
        if layouts < len(step_paths):
            notes.append(f"{len(step_paths)} step parameters from {layouts} fitted layout(s): underdetermined, "
                         "the split between them is arbitrary; fit more layouts")
    if not flat:
        raise SpecError("nothing to fit: no microbenchmarks and no finished jobs", field="calibrate")
    meta = bench.ranks[0] if bench is not None and bench.ranks else {}
    what = f"measured by paraplan validate on {day}"
    sources = {p: f"{what} ({meta.get('device', 'cpu')}, {meta.get('backend', 'gloo')}, "
               f"{meta.get('world', '?')} ranks)" for p in flat}
    for p in step_paths:
        sources[p] = f"{what}: fitted to measured step times of {len(fit_jobs)} jobs (held out: {held_out})"
    overlay = _round(nest(flat))
    overlay["sources"] = sources
    overlay["calibration"] = {
        "tool": "paraplan calibrate", "date": day, "base": base_prof.name,
        "device": meta.get("device", ""), "backend": meta.get("backend", ""), "ranks": meta.get("world", 0),
        "torch_version": meta.get("torch_version", ""), "fitted_layouts": sorted({j.layout for j in fit_jobs}),
        "held_out_layout": held_out,
    }
    after = profile_with(base, overlay, path)
    rows = []
    for j in usable:
        before_s, after_s = predict_step(j, base_prof), predict_step(j, after)
        rows.append(LayoutError(
            layout=j.layout, held_out=j.layout == held_out, measured_s=j.step_time_s,
            measured_min_s=j.step_time_min_s, measured_max_s=j.step_time_max_s, predicted_before_s=before_s,
            predicted_after_s=after_s, error_before_pct=100 * (before_s - j.step_time_s) / j.step_time_s,
            error_after_pct=100 * (after_s - j.step_time_s) / j.step_time_s))
    held = [r.error_after_pct for r in rows if r.held_out]
    overlay["calibration"]["held_out_error_pct"] = [round(e, 2) for e in held]
    return CalibrationReport(base=base_prof.name, overlay=overlay, layouts=rows, held_out=held_out,
                             held_out_error_pct=held, notes=notes)


def overlay_yaml(report: CalibrationReport) -> str:
    """The overlay as YAML text (profile keys first, then sources, then the calibration block)."""
    import yaml

    header = (f"# Calibration overlay for '{report.base}' written by paraplan calibrate.\n"
              f"# Apply with: --hardware {report.base} --calibration THIS_FILE (the base profile is not edited).\n")
    return header + yaml.safe_dump(report.overlay, sort_keys=False, width=110)
