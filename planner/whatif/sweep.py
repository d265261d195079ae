"""Sweeps: estimate a base scenario over a grid of ``--vary KEY=v1,v2,...`` values.

Scaling modes when ``gpus`` is varied (tp, pp held; dp re-derived at each point):

- ``weak``: the global batch grows with the GPU count from the first point's value
  (``global_batch_i = global_batch_0 * gpus_i / gpus_0``), so each replica's work is constant.
  Efficiency = (tokens/s per GPU)_i / (tokens/s per GPU)_0.
- ``strong``: the global batch is fixed. Efficiency = speedup / ideal speedup
  = (T_0 / T_i) / (gpus_i / gpus_0), which equals the same per-GPU throughput ratio.
"""

from __future__ import annotations

import itertools
from typing import Callable, Literal, Sequence

from pydantic import Field

from ..cost.bottleneck import analyse_scenario
from ..cost.result import Result
from ..errors import InfeasibleError, SpecError
from ..scenario import Scenario
from .compare import Bottleneck, bottleneck_of, get_engine
from .keys import apply_settings, canonical_key, parse_assignment

Mode = Literal["weak", "strong"]
MODES = ("weak", "strong")
Replanner = Callable[[Scenario], Scenario]


class SweepPoint(Result):
    """One point of a sweep."""

    values: dict[str, str] = Field(description="the varied key -> value at this point")
    gpus: int = Field(description="ranks")
    layout: str = Field(description="layout used (re-planned with --replan)")
    global_batch: int = Field(description="global batch, sequences")
    step_time_s: float | None = Field(None, description="step time, s")
    tokens_per_s: float | None = Field(None, description="throughput, tokens/s")
    tokens_per_s_per_gpu: float | None = Field(None, description="throughput per GPU, tokens/s")
    mfu: float | None = Field(None, description="model FLOPs utilisation")
    peak_memory_bytes: float | None = Field(None, description="worst stage peak, bytes")
    fits: bool | None = Field(None, description="every stage fits")
    bottleneck: Bottleneck | None = Field(None, description="largest time part")
    time_s: dict[str, float] = Field(default_factory=dict, description="time breakdown, s")
    efficiency: float | None = Field(None, description="scaling efficiency vs the first point (gpus varied)")
    error: str | None = Field(None, description="why this point has no estimate")


class SweepResult(Result):
    """``paraplan sweep`` result."""

    engine: str = Field(description="analytic or simulate")
    mode: Mode = Field(description="weak or strong")
    replan: bool = Field(description="layout re-planned at every point")
    keys: list[str] = Field(description="varied keys, in grid order")
    points: list[SweepPoint] = Field(description="grid points in order")
    model: str = Field("", description="model name of the base scenario")
    hardware: str = Field("", description="hardware profile name of the base scenario")


def parse_vary(text: str) -> tuple[str, list[str]]:
    """``"gpus=128,256"`` -> ``("gpus", ["128", "256"])``."""
    key, values = parse_assignment(text, option="--vary")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not items:
        raise SpecError(f"'{text}' gives no values (e.g. gpus=128,256,512)", field="--vary")
    return key, items


def _point_settings(base: Scenario, keys: Sequence[str], combo: Sequence[str], mode: Mode,
                    first_gpus: int | None) -> list[tuple[str, str]]:
    settings = list(zip(keys, combo, strict=True))
    batch_set = any(canonical_key(k) == "training.global_batch_size" for k in keys)
    if mode == "weak" and "gpus" in keys and not batch_set:
        gpus = int(float(dict(settings)["gpus"]))
        gb0 = base.training.global_batch_size
        if (gb0 * gpus) % first_gpus:
            raise SpecError(f"weak scaling: global_batch({gb0}) * gpus({gpus}) / gpus({first_gpus}) is not whole",
                            field="--vary")
        settings.append(("training.global_batch", str(gb0 * gpus // first_gpus)))
    return settings


def sweep(base: Scenario, vary: Sequence[tuple[str, Sequence[str]]], mode: Mode = "strong",
          engine: str = "analytic", replan: Replanner | None = None,
          progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Estimate ``base`` at every point of the grid ``vary`` (cartesian product, first key slowest).

    ``base`` is the scenario at the first point's other settings; the first grid point defines
    the reference of the scaling efficiency. ``replan(scenario) -> scenario`` picks a new layout
    at each point. Points that cannot run record their error instead of stopping the sweep;
    an unknown key or unit raises SpecError.
    """
    if mode not in MODES:
        raise SpecError(f"'{mode}' is not one of: {', '.join(MODES)}", field="--mode")
    run = get_engine(engine)
    keys = [k for k, _ in vary]
    grid = list(itertools.product(*[v for _, v in vary]))
    first_gpus = None
    if "gpus" in keys:
        first_gpus = int(float(grid[0][keys.index("gpus")]))
    points: list[SweepPoint] = []
    ref: float | None = None
    for i, combo in enumerate(grid):
        values = dict(zip(keys, combo, strict=True))
        try:
            settings = _point_settings(base, keys, combo, mode, first_gpus)
            scenario = apply_settings(base, settings, check=replan is None, option="--vary")[0]
        except SpecError as exc:
            if i == 0 or "unknown key" in str(exc) or "cannot read" in str(exc):
                raise
            points.append(SweepPoint(values=values, gpus=0, layout="-", global_batch=0, error=str(exc)))
            continue
        if replan is not None:
            try:
                scenario = replan(scenario)
            except SpecError as exc:
                points.append(SweepPoint(values=values, gpus=scenario.gpus, layout="-",
                                         global_batch=scenario.training.global_batch_size, error=str(exc)))
                continue
        est = run(scenario)
        per_gpu = est.tokens_per_s / scenario.gpus
        if first_gpus is not None and ref is None and i == 0:
            ref = per_gpu
        points.append(SweepPoint(
            values=values, gpus=scenario.gpus, layout=scenario.layout.describe(),
            global_batch=scenario.training.global_batch_size, step_time_s=est.step_time_s,
            tokens_per_s=est.tokens_per_s, tokens_per_s_per_gpu=per_gpu, mfu=est.mfu,
            peak_memory_bytes=est.peak_memory_bytes, fits=est.fits,
            bottleneck=bottleneck_of(est, analyse_scenario(scenario)),
            time_s=est.time.model_dump(), efficiency=per_gpu / ref if ref else None))
        if progress:
            progress(i + 1, len(grid))
    return SweepResult(engine=engine, mode=mode, replan=replan is not None, keys=keys, points=points,
                       model=base.model.name, hardware=base.hardware.name)


def search_replanner(top: int = 1) -> Replanner:
    """A replanner that asks planner.search for the best layout at each point's GPU count.

    SpecError when planner.search is not available in this installation.
    """
    try:
        from ..search.engine import search
    except ImportError as exc:
        raise SpecError(f"--replan needs planner.search, which is unavailable ({exc})", field="--replan") from None

    def replan(scenario: Scenario) -> Scenario:
        try:
            best = search(scenario.model, scenario.hardware, scenario.gpus, scenario.training, top=top).best
        except InfeasibleError as exc:
            raise SpecError(f"no feasible layout: {exc}", field="--replan") from None
        return Scenario(model=scenario.model, hardware=scenario.hardware, gpus=best.gpus,
                        training=best.training, layout=best.layout)

    return replan


def base_at_first_point(base: Scenario, vary: Sequence[tuple[str, Sequence[str]]]) -> Scenario:
    """``base`` moved to the first grid point's GPU count (so dp is derived there)."""
    for key, values in vary:
        if key == "gpus" and int(float(values[0])) != base.gpus:
            return apply_settings(base, [("gpus", values[0])])[0]
    return base


__all__ = ["MODES", "SweepPoint", "SweepResult", "base_at_first_point", "parse_vary", "search_replanner", "sweep"]
