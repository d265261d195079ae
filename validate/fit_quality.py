"""Is a calibration fit trustworthy? Warnings when the held-out error or the spread of repeated
measurements is large (the usual cause: a loaded machine while measuring).

Thresholds (percent):
- held-out |error| above 30 %: calibrations on a quiet 2-core host stayed within -21.9 % .. +24.3 % on
  the held-out layout (README, validation table), so 30 % is outside what the method itself gives;
- spread of the repeats of one layout, (slowest - fastest) / median of the per-repeat medians,
  above 25 %: the fit averages over rounds (calibrate_cmd.interleave), and a spread that large means
  the rounds measured different machines.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

HELD_OUT_WARN_PCT = 30.0
SPREAD_WARN_PCT = 25.0


def repeat_spreads(layouts) -> dict[str, tuple[float, float, float]]:
    """Per layout measured more than once: (spread %, fastest s, slowest s) of its per-repeat medians.

    ``layouts`` are objects with ``layout`` and ``measured_s`` (validate.calibrate.LayoutError)."""
    times: dict[str, list[float]] = defaultdict(list)
    for row in layouts:
        if row.measured_s and row.measured_s > 0:
            times[row.layout].append(row.measured_s)
    out = {}
    for layout, ts in times.items():
        if len(ts) >= 2:
            out[layout] = (100 * (max(ts) - min(ts)) / statistics.median(ts), min(ts), max(ts))
    return out


def fit_warnings(report, *, held_out_pct: float = HELD_OUT_WARN_PCT,
                 spread_pct: float = SPREAD_WARN_PCT) -> list[str]:
    """One sentence per problem of ``report`` (validate.calibrate.CalibrationReport), with its figures."""
    warnings = []
    errors = list(report.held_out_error_pct or [])
    if errors and max(abs(e) for e in errors) > held_out_pct:
        warnings.append(
            f"held-out {report.held_out}: error {min(errors):+.1f} % .. {max(errors):+.1f} % over {len(errors)} "
            f"run(s), beyond ±{held_out_pct:g} %: the fit does not predict a layout it was not fitted on; "
            "was the machine busy? Rerun on a quiet machine (or with more --repeats) before using this overlay")
    for layout, (spread, fastest, slowest) in sorted(repeat_spreads(report.layouts).items()):
        if spread > spread_pct:
            warnings.append(
                f"repeats of {layout} spread {spread:.0f} % ({fastest:.3g} s .. {slowest:.3g} s, above "
                f"{spread_pct:g} %): the measurements disagree with each other, so the fit is uncertain")
    return warnings
