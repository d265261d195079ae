"""Golden: the seed study's headline throughputs (Dash et al. 2023, arXiv 2312.12705, abstract):
38.38 / 36.14 / 31.96 % of the 191.5 TFLOP/s GCD peak, Megatron Eq. 3 hardware-FLOPs convention,
at the authors' public launch configurations. Tolerance: +-10 % relative (issue 3)."""

import pytest

from hwprofiles import load_hardware
from planner.bench.fit_mi250x_frontier import POINTS, predicted_percent


@pytest.mark.parametrize("point", POINTS, ids=[p[0] for p in POINTS])
def test_headline_within_ten_percent(point):
    hw = load_hardware("mi250x-frontier")
    predicted = predicted_percent(hw, point)
    reported = point[5]
    assert abs(predicted / reported - 1) <= 0.10, f"{point[0]}: predicted {predicted:.2f}% vs {reported}%"
