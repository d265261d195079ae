"""Elasticity of step time with respect to each hardware and model parameter (±10 %), ranked.

Elasticity e = (T(x+) - T(x-)) / T(x0) / ((x+ - x-) / x0), a central difference of
d ln T / d ln x. For a resource whose time is inversely proportional to it (a bandwidth, a peak
rate), -e is the fraction of the step that scales with 1/x: the share of the step "bound" by it.
For a cost that adds time (a latency, an overhead), +e is that share.
"""

from __future__ import annotations

import math
from typing import Sequence

from pydantic import Field

from ..cost.bottleneck import analyse_scenario
from ..cost.bottleneck import story as bottleneck_story
from ..cost.result import Result
from ..errors import SpecError
from ..pricing.placement import axis_strides
from ..scenario import Scenario
from .compare import get_engine
from .keys import apply_settings, read_key

STEP = 0.10

# (key, words, group, True when more of it is better)
PARAMETERS: tuple[tuple[str, str, str, bool], ...] = (
    ("hardware.peak_tflops", "peak compute (TFLOP/s)", "hardware", True),
    ("hardware.hbm_bandwidth", "HBM bandwidth", "hardware", True),
    ("hardware.nic_bandwidth", "inter-node bandwidth (NIC)", "hardware", True),
    ("hardware.link_bandwidth", "intra-node link bandwidth", "hardware", True),
    ("hardware.network_latency", "inter-node latency", "hardware", False),
    ("hardware.node_latency", "intra-node latency", "hardware", False),
    ("hardware.kernel_overhead", "kernel launch overhead", "hardware", False),
    ("hardware.hbm_capacity", "HBM capacity", "hardware", True),
    ("model.hidden", "hidden size (FFN scaled alike)", "model", False),
    ("model.layers", "layers", "model", False),
    ("training.seq", "sequence length", "model", False),
    ("model.vocab", "vocabulary", "model", False),
)


class Elasticity(Result):
    """Sensitivity of the step time to one parameter."""

    key: str = Field(description="the --set key varied")
    label: str = Field(description="the parameter in words")
    group: str = Field(description="hardware or model")
    value: float = Field(description="base value (field units)")
    low: float = Field(description="value at -10 % (after rounding to a valid value)")
    high: float = Field(description="value at +10 %")
    step_time_low_s: float = Field(description="step time at the low value, s")
    step_time_high_s: float = Field(description="step time at the high value, s")
    elasticity: float = Field(description="d ln(step time) / d ln(value), central difference")
    bound_share: float = Field(description="|elasticity|: fraction of the step that scales with it")
    improve_delta: float = Field(description="relative step-time change of the 10 % improvement")
    improve_text: str = Field(description="the improvement in words (+10 % bandwidth, -10 % latency)")
    double_delta: float | None = Field(None, description="relative step-time change when the parameter is 2x "
                                       "better (x2 a rate, x0.5 a cost); hardware parameters only")


#: Stragglers the simulate engine prices: (--set key, value, words). A slow rank is placed on the first and
#: on the last pipeline stage (the last one carries the head) and the slower of the two is reported.
STRAGGLERS: tuple[tuple[str, str, str], ...] = (
    ("straggler", "compute=0.9", "one GPU at 90 % of its speed"),
    ("straggler", "nic=0.5", "one NIC at half its bandwidth"),
    ("rank_variation", "0.02", "every GPU's speed varies, sigma 2 %"),
)


class StragglerImpact(Result):
    """What one straggler does to the simulated step."""

    setting: str = Field(description="the --set KEY=VALUE that adds it")
    label: str = Field(description="the straggler in words")
    step_time_s: float = Field(description="simulated step time with it, s")
    delta: float = Field(description="relative change of the simulated step time")


class Sensitivity(Result):
    """``paraplan sensitivity`` result."""

    engine: str = Field(description="analytic or simulate")
    step_time_s: float = Field(description="base step time, s")
    hardware: list[Elasticity] = Field(description="hardware parameters, largest |elasticity| first")
    model: list[Elasticity] = Field(description="model parameters, largest |elasticity| first")
    skipped: list[str] = Field(description="parameters that could not be varied, and why")
    headline: str = Field(description="the sentence of the hardware parameter whose 2x improvement helps most")
    bottleneck: str = Field("", description="the bottleneck resource and what its 2x speed-up saves "
                            "(planner.cost.bottleneck, analytic), the same as whatif's")
    sentences: list[str] = Field(description="one sentence per hardware parameter with a share >= 1 %, ranked")
    stragglers: list[StragglerImpact] = Field(
        default_factory=list, description="slow GPU / NIC and per-rank variation (simulate engine only), slowest first")


def _granule(scenario: Scenario, key: str) -> int:
    """Integer parameters must stay valid: hidden a multiple of heads, layers of pp*vpp when interleaved."""
    if key == "model.hidden":
        return scenario.model.num_heads
    if key == "model.layers" and scenario.layout.vpp > 1:
        return scenario.layout.pp * scenario.layout.vpp
    if key == "training.seq" and scenario.layout.cp > 1:
        return 2 * scenario.layout.cp
    return 1


def _value_text(scenario: Scenario, key: str, factor: float) -> str:
    current = read_key(scenario, key)
    if isinstance(current, int) and not isinstance(current, bool):
        g = _granule(scenario, key)
        target = max(g, round(current * factor / g) * g)
        if target == current:
            target = current + g if factor > 1 else max(g, current - g)
        return str(target)
    return f"x{factor:g}"


def _vary(scenario: Scenario, key: str, factor: float) -> Scenario:
    return apply_settings(scenario, [(key, _value_text(scenario, key, factor))])[0]


def sensitivity(base: Scenario, engine: str = "analytic", step: float = STEP,
                keys: Sequence[str] | None = None) -> Sensitivity:
    """Elasticity of ``base``'s step time for every parameter of :data:`PARAMETERS` (or ``keys``)."""
    run = get_engine(engine)
    t0 = run(base).step_time_s
    rows: dict[str, list[Elasticity]] = {"hardware": [], "model": []}
    skipped = []
    chosen = [p for p in PARAMETERS if keys is None or p[0] in keys]
    for key, label, group, more_is_better in chosen:
        x0 = float(read_key(base, key))
        if x0 == 0:
            skipped.append(f"{key}: value is 0 (nothing to scale)")
            continue
        try:
            lo_s, hi_s = _vary(base, key, 1 - step), _vary(base, key, 1 + step)
        except SpecError as exc:
            skipped.append(f"{key}: {exc}")
            continue
        lo, hi = float(read_key(lo_s, key)), float(read_key(hi_s, key))
        if hi == lo:
            skipped.append(f"{key}: a ±{step:g} change rounds to the same value")
            continue
        t_lo, t_hi = run(lo_s).step_time_s, run(hi_s).step_time_s
        e = (t_hi - t_lo) / t0 / ((hi - lo) / x0)
        better_t = t_hi if more_is_better else t_lo
        pct = (hi / x0 - 1) if more_is_better else (lo / x0 - 1)
        word = label.split(" (")[0]
        double = None
        if group == "hardware" and key != "hardware.hbm_capacity":  # capacity changes no time
            doubled = apply_settings(base, [(key, "x2" if more_is_better else "x0.5")])[0]
            double = run(doubled).step_time_s / t0 - 1
        rows[group].append(Elasticity(
            key=key, label=label, group=group, value=x0, low=lo, high=hi, step_time_low_s=t_lo,
            step_time_high_s=t_hi, elasticity=e, bound_share=abs(e), improve_delta=better_t / t0 - 1,
            improve_text=f"{pct:+.0%} {word}", double_delta=double))
    for group in rows:
        rows[group].sort(key=lambda r: -abs(r.elasticity))
    story = bottleneck_story(analyse_scenario(base), t0)
    impacts = []
    if engine == "simulate" and keys is None:
        impacts = straggler_impacts(base, run, t0)
    elif keys is None:
        skipped.append("stragglers: priced by the simulator (--engine simulate)")
    return Sensitivity(engine=engine, step_time_s=t0, hardware=rows["hardware"], model=rows["model"],
                       skipped=skipped, headline=headline(rows["hardware"]), bottleneck=story,
                       sentences=[sentence(r) for r in rows["hardware"] if r.bound_share >= 0.01],
                       stragglers=impacts)


def straggler_impacts(base: Scenario, run, t0: float) -> list[StragglerImpact]:
    """The simulated step with each straggler of :data:`STRAGGLERS` (a slow rank on the first and the last
    pipeline stage of replica 0, the slower kept), slowest first."""
    last = (base.layout.pp - 1) * axis_strides(base.layout)["pp"][1]  # first rank of the last stage
    out = []
    for key, value, label in STRAGGLERS:
        texts = [value] if key != "straggler" else [f"rank=0,{value}"] + ([f"rank={last},{value}"] if last else [])
        best = None
        for text in texts:
            t = run(apply_settings(base, [(key, text)])[0]).step_time_s
            if best is None or t > best[0]:
                best = (t, f"{key}={text}")
        out.append(StragglerImpact(setting=best[1], label=label, step_time_s=best[0], delta=best[0] / t0 - 1))
    return sorted(out, key=lambda r: -r.delta)


def headline(hardware: Sequence[Elasticity]) -> str:
    """"Your step is 41% bound by inter-node bandwidth (NIC): +10% ... gives -3.9% step time, 2x gives
    -21%" for the parameter whose 2x improvement helps most (the largest elasticity when none was
    doubled): near a kink of the step time (two overlapped resources almost equal) the small-step
    elasticities of both are large, and the 2x figure tells which one pays."""
    if not hardware or math.isclose(hardware[0].bound_share, 0.0, abs_tol=1e-12):
        return "No hardware parameter changes the step time by itself."
    doubled = [r for r in hardware if r.double_delta is not None]
    top = min(doubled, key=lambda r: r.double_delta) if doubled else hardware[0]
    return sentence(top)


def sentence(row: Elasticity) -> str:
    """The bottleneck sentence of one parameter, from its measured numbers."""
    sign = "−" if row.improve_delta < 0 else "+"
    text = (f"Your step is {row.bound_share:.0%} bound by {row.label}: {row.improve_text} gives "
            f"{sign}{abs(row.improve_delta):.1%} step time")
    if row.double_delta is not None:
        word = "halved" if row.improve_text.startswith("-") else "doubled"
        text += f", {word} {'−' if row.double_delta < 0 else '+'}{abs(row.double_delta):.1%}"
    return text
