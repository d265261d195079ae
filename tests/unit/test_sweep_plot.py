"""The sweep PNG: the varied key on the x axis, throughput and step time, infeasible points marked;
scaling efficiency only when gpus is varied (issue #15, defect 8)."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from planner.report.sweep_plot import sweep_figure  # noqa: E402
from planner.scenario import Scenario  # noqa: E402
from planner.specs import Layout, TrainingSpec  # noqa: E402
from planner.whatif import sweep  # noqa: E402


@pytest.fixture(scope="module")
def base() -> Scenario:
    from hwprofiles import load_hardware, load_model

    return Scenario(model=load_model("llama3-70b"), hardware=load_hardware("h100-sxm-80gb"), gpus=64,
                    training=TrainingSpec(global_batch_size=128, micro_batch_size=1, seq_length=2048),
                    layout=Layout(tp=1, pp=1, dp=64, zero_stage=1))


def _marked(ax) -> int:
    """Points drawn with the "does not fit" marker (scatter collections)."""
    return sum(len(c.get_offsets()) for c in ax.collections)


def test_layout_key_on_the_x_axis_with_step_time_and_unfit_points_marked(base):
    res = sweep(base, [("layout.tp", ["1", "3", "4", "8"])])
    ok = [p for p in res.points if not p.error]
    unfit = [p for p in ok if p.fits is False]
    assert unfit and len(unfit) < len(ok) + 1 and any(p.error for p in res.points)
    fig = sweep_figure(res)
    ax_tps, ax_step = fig.axes
    for ax in (ax_tps, ax_step):
        assert ax.get_xlabel() == "layout.tp"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3", "4", "8"]
    assert "tokens/s" in ax_tps.get_ylabel() and "step time" in ax_step.get_ylabel()
    assert not any("efficiency" in ax.get_ylabel() for ax in fig.axes)
    tps_line = ax_tps.get_lines()[0]
    assert list(tps_line.get_ydata()) == [p.tokens_per_s for p in ok]
    step_line = ax_step.get_lines()[0]
    assert list(step_line.get_ydata()) == [p.step_time_s for p in ok]
    assert _marked(ax_tps) == len(unfit)
    labels = [t.get_text() for t in ax_tps.get_legend().get_texts()]
    assert "does not fit in memory" in labels and "cannot run (see table)" in labels
    assert "llama3-70b" in fig._suptitle.get_text() and "h100-sxm-80gb" in fig._suptitle.get_text()


def test_gpus_sweep_keeps_the_efficiency_panel(base):
    res = sweep(base, [("gpus", ["64", "128"])])
    fig = sweep_figure(res)
    assert len(fig.axes) == 3 and fig.axes[0].get_xlabel() == "GPUs"
    eff = fig.axes[2].get_lines()[0].get_ydata()
    assert list(eff) == pytest.approx([100 * p.efficiency for p in res.points])
    assert min(eff) > 0


def test_grid_draws_one_line_per_value_of_the_second_key(base):
    res = sweep(base, [("tp", ["1", "2"]), ("zero", ["1", "3"])])
    fig = sweep_figure(res)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "zero=1" in labels and "zero=3" in labels
