"""``paraplan report frontier``: the Frontier case-study report (issue 8)."""

from __future__ import annotations

import json

import pytest

HEADLINE = {"frontier-22b": 38.38, "frontier-175b": 36.14, "frontier-1t": 31.96}  # Dash et al. 2023 abstract


def _headline_rows(md: str) -> dict[str, tuple[float, float]]:
    """model -> (study %, paraplan %) from the Section 1 table."""
    section = md.split("## 1.")[1].split("Time breakdown")[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in HEADLINE:
            rows[cells[0]] = (float(cells[5]), float(cells[6]))
    return rows


def _without_timestamp(md: str) -> str:
    return "\n".join(line for line in md.splitlines() if not line.startswith("Generated: "))


@pytest.mark.slow
def test_report_frontier_reproduces_headline_and_is_deterministic(run_cli, tmp_path):
    out1, out2 = tmp_path / "a" / "frontier", tmp_path / "b" / "frontier"
    first = run_cli("report", "frontier", "--out", out1, "--json")
    assert first.exit_code == 0, first.stderr
    data = json.loads(first.stdout)
    md1 = (out1.parent / "frontier.md").read_text()
    rows = _headline_rows(md1)
    assert set(rows) == set(HEADLINE)
    for model, (study, predicted) in rows.items():
        assert study == HEADLINE[model]
        assert abs(predicted / study - 1) <= 0.10, (model, predicted, study)
    # weak scaling of the study's ladders stays >= 95 % (issue 8, "must show")
    for name, s in data["data"]["scaling"].items():
        assert min(p["efficiency"] for p in s["weak"]) >= 0.95, name
    pngs = sorted(p.name for p in out1.glob("*.png"))
    assert {"headline.png", "tp_sweep.png", "scaling.png", "memory.png"} <= set(pngs)
    for name in pngs:
        assert f"](frontier/{name})" in md1

    second = run_cli("report", "frontier", "--out", out2)
    assert second.exit_code == 0, second.stderr
    assert "frontier-175b" in second.stdout
    md2 = (out2.parent / "frontier.md").read_text()
    assert md1.count("Generated: ") == 1
    assert _without_timestamp(md1) == _without_timestamp(md2)
    for name in pngs:
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes(), name
