"""``paraplan bench readme``: the figures quoted in the README are recomputed by the commands that
produced them, printed with the date and the machine's load, and marked stale when the text no
longer holds them."""

from __future__ import annotations

import json


def test_figures_come_with_date_load_and_whether_the_readme_holds_them(run_cli):
    res = run_cli("bench", "readme", "--only", "single-GPU steps", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["date"] and "load_1min" in data and data["cpus"] >= 1
    (fig,) = data["figures"]
    assert fig["command"] == "paraplan bench steps" and fig["value"].startswith("| 22 |") and fig["quoted"]
    text = run_cli("bench", "readme", "--only", "single-GPU steps").stdout
    assert "figures of " in text and " load " in text and "single-GPU" in text


def test_a_figure_the_text_does_not_hold_is_stale(run_cli, monkeypatch):
    import planner.cli.readme_cmd as readme

    fake = readme.Figure("made up", "README.md", ("bench", "steps"), lambda d: "median |time error| 99.9 %")
    monkeypatch.setattr(readme, "FIGURES", (fake,))
    res = run_cli("bench", "readme", "--json")
    assert json.loads(res.stdout)["figures"][0]["quoted"] is False
    assert "stale" in run_cli("bench", "readme").stdout


def test_an_unknown_figure_is_bad_input(run_cli):
    res = run_cli("bench", "readme", "--only", "no such figure")
    assert res.exit_code == 2 and "--only" in res.stderr
