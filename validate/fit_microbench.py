"""Fit hardware-profile efficiency fields from a microbenchmark file (pure functions, no I/O but loading).

The input is the format of ``hwprofiles/data/h200_microbench.json`` (measured on one H200,
2026-11-27; see that file's ``what`` field). Every function returns plain numbers that go into a
:class:`planner.specs.DeviceSpec`:

- ``gemm_efficiency``: GEMM size in GFLOP (= 2*M*N*K / 1e9) -> achieved fraction of the dense
  peak, as the median efficiency of log-spaced size bins (:func:`fit_gemm_curve`);
- ``gemm_min_dim_knee``: the smallest GEMM dimension below which shapes run clearly slower than
  other shapes of the same size bin (:func:`fit_min_dim_knee`; 0 when the data shows no such knee);
- attention forward/backward efficiency, streaming-memory efficiency, fused-AdamW throughput and
  the fp8-over-bf16 GEMM speedup.

:func:`scale_curve` transfers a measured curve to another device whose curve was not measured
(an inference, to be marked as such in the profile).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

#: Causal flash-attention backward FLOPs over forward FLOPs (dQ, dK, dV and the recomputed
#: scores: 2.5x the forward), the convention of the microbenchmark file ("fwd+bwd 3.5x fwd")
#: and of FlashAttention-2 (Dao 2023, arXiv:2307.08691, §4 benchmark FLOP counts).
ATTENTION_BACKWARD_FLOP_RATIO = 2.5


def default_microbench_path() -> Path:
    """The H200 microbenchmark file shipped with ``hwprofiles`` (package data)."""
    return Path(__file__).resolve().parent.parent / "hwprofiles" / "data" / "h200_microbench.json"


def load_microbench(path: str | Path | None = None) -> dict[str, Any]:
    """Parse a microbenchmark JSON file (default: the shipped H200 file)."""
    return json.loads(Path(path or default_microbench_path()).read_text())


def gemm_samples(data: dict[str, Any], peak_tflops: float) -> list[tuple[float, float, int]]:
    """``(gflop, efficiency, smallest dimension)`` for each bf16 GEMM of ``data['gemm']``.

    ``gflop`` = 2*M*N*K / 1e9; efficiency = measured TFLOP/s / ``peak_tflops`` (dense bf16 peak).
    """
    out = []
    for g in data["gemm"]:
        gflop = 2.0 * g["M"] * g["N"] * g["K"] / 1e9
        out.append((gflop, g["tflops"] / peak_tflops, min(g["M"], g["N"], g["K"])))
    return out


def _bin_index(gflop: float, bins_per_decade: int) -> int:
    return math.floor(math.log10(gflop) * bins_per_decade + 1e-9)


def fit_gemm_curve(
    samples: list[tuple[float, float, int]], bins_per_decade: int = 3
) -> list[dict[str, float]]:
    """Efficiency curve points ``{"gflop", "efficiency"}``, one per non-empty log-spaced size bin.

    Each point sits at the median GFLOP of its bin and carries the median efficiency of the bin
    (medians resist the odd slow kernel choice). Points come out in increasing ``gflop``.
    """
    bins: dict[int, list[tuple[float, float]]] = {}
    for gflop, eff, _ in samples:
        bins.setdefault(_bin_index(gflop, bins_per_decade), []).append((gflop, eff))
    return [
        {
            "gflop": statistics.median(g for g, _ in members),
            "efficiency": statistics.median(e for _, e in members),
        }
        for _, members in sorted(bins.items())
    ]


def gemm_efficiency_overlay(samples: list[tuple[float, float, int]], notes: list[str]) -> list[dict[str, float]]:
    """The ``device.gemm_efficiency`` overlay value of measured GEMM ``samples`` (``fit_gemm_curve``), each
    efficiency clamped to 1; a note in ``notes`` when one was above (the base profile's peak is too low)."""
    curve = fit_gemm_curve(samples)
    if any(p["efficiency"] > 1 for p in curve):
        notes.append("GEMM efficiency above 1 clamped: the base profile's peak is below what was measured")
    return [{"gflop": p["gflop"], "efficiency": round(min(1.0, p["efficiency"]), 6)} for p in curve]


def fit_min_dim_knee(
    samples: list[tuple[float, float, int]],
    candidates: tuple[int, ...] = (128, 256, 512, 1024),
    bins_per_decade: int = 3,
) -> int:
    """Smallest-dimension knee that best explains the data, or 0 when none improves the fit.

    A sample's residual is its efficiency over the median efficiency of its own size bin (the
    size curve already explains size). A knee ``c`` predicts a residual of ``min(1, dim / c)``
    (efficiency falling linearly below ``c``); the candidate, or 0 (no knee), with the smallest
    mean absolute log error over all samples wins.
    """
    bins: dict[int, list[float]] = {}
    for gflop, eff, _ in samples:
        bins.setdefault(_bin_index(gflop, bins_per_decade), []).append(eff)
    medians = {k: statistics.median(v) for k, v in bins.items()}
    residual = [(dim, eff / medians[_bin_index(g, bins_per_decade)]) for g, eff, dim in samples]

    def error(knee: int) -> float:
        return statistics.fmean(
            abs(math.log(r) - math.log(min(1.0, dim / knee) if knee else 1.0)) for dim, r in residual
        )

    return min((0, *sorted(candidates)), key=error)


def attention_efficiencies(
    data: dict[str, Any], peak_tflops: float, head_dim: int = 128
) -> tuple[float, float]:
    """Median (forward, backward) causal-attention efficiency over entries with ``hd == head_dim``.

    Forward: measured forward TFLOP/s / peak. Backward FLOPs = ATTENTION_BACKWARD_FLOP_RATIO x
    forward FLOPs, backward time = ``s_fwdbwd - s_fwd``.
    """
    fwd, bwd = [], []
    for a in data["attn"]:
        if a["hd"] != head_dim:
            continue
        fwd_flop = a["tflops_fwd"] * 1e12 * a["s_fwd"]
        fwd.append(a["tflops_fwd"] / peak_tflops)
        bwd_s = a["s_fwdbwd"] - a["s_fwd"]
        bwd.append(ATTENTION_BACKWARD_FLOP_RATIO * fwd_flop / bwd_s / 1e12 / peak_tflops)
    if not fwd:
        raise ValueError(f"no attention entries with hd == {head_dim}")
    return statistics.median(fwd), statistics.median(bwd)


def memory_efficiency(data: dict[str, Any], hbm_bandwidth_gbps: float) -> float:
    """Device-copy bandwidth (read + write bytes per second) over the HBM peak, best copy entry."""
    copies = [b["GBps"] for b in data["bw"] if b.get("op") == "copy"]
    return max(copies) / hbm_bandwidth_gbps


def optimizer_params_per_s(data: dict[str, Any]) -> float:
    """Fused AdamW fp32 throughput (parameters per second) of the largest fused run."""
    fused = [o for o in data["optimizer"] if o.get("fused")]
    return max(fused, key=lambda o: o["params"])["params_per_s"]


def fp8_gemm_speedup(data: dict[str, Any]) -> float:
    """Median fp8 / bf16 TFLOP/s over the GEMM shapes measured in both datatypes."""
    bf16 = {(g["M"], g["N"], g["K"]): g["tflops"] for g in data["gemm"]}
    ratios = [
        f["tflops"] / bf16[(f["M"], f["N"], f["K"])]
        for f in data["gemm_fp8"]
        if (f["M"], f["N"], f["K"]) in bf16
    ]
    if not ratios:
        raise ValueError("no GEMM shape measured in both fp8 and bf16")
    return statistics.median(ratios)


def curve_plateau(points: list[dict[str, float]], top_fraction: float = 0.5) -> float:
    """Median efficiency of the largest ``top_fraction`` of a curve's points (its large-GEMM level)."""
    effs = [p["efficiency"] for p in points]
    k = max(1, round(len(effs) * top_fraction))
    return statistics.median(effs[-k:])


def scale_curve(
    points: list[dict[str, float]], peak_ratio: float, plateau: float
) -> list[dict[str, float]]:
    """Transfer a measured curve to another device (an inference).

    Small GEMMs are bound by fixed per-kernel time, so a device with ``peak_ratio`` times the
    peak reaches the same efficiency at ``peak_ratio`` times the GEMM size: sizes scale by
    ``peak_ratio``. Efficiencies scale so that the curve's plateau (:func:`curve_plateau`)
    becomes ``plateau``, capped at 1.
    """
    factor = plateau / curve_plateau(points)
    return [
        {"gflop": p["gflop"] * peak_ratio, "efficiency": min(1.0, p["efficiency"] * factor)}
        for p in points
    ]


def fit_device_fields(
    data: dict[str, Any], peak_bf16_tflops: float, hbm_bandwidth_gbps: float
) -> dict[str, Any]:
    """Every efficiency field of a DeviceSpec measured by ``data`` (a dict ready for YAML)."""
    samples = gemm_samples(data, peak_bf16_tflops)
    attn_fwd, attn_bwd = attention_efficiencies(data, peak_bf16_tflops)
    return {
        "gemm_efficiency": fit_gemm_curve(samples),
        "gemm_min_dim_knee": fit_min_dim_knee(samples),
        "fp8_gemm_speedup": fp8_gemm_speedup(data),
        "memory_efficiency": memory_efficiency(data, hbm_bandwidth_gbps),
        "attention_efficiency": attn_fwd,
        "attention_backward_efficiency": attn_bwd,
        "optimizer_params_per_s": optimizer_params_per_s(data),
    }
