"""paraplan explore, headless with Textual's pilot: keys change the layout; numbers equal estimate."""

from __future__ import annotations

import asyncio
import json

from planner.cli.common import build_scenario
from planner.cli.explore_app import ExploreApp, figures
from planner.cost.result import Estimate

FLAGS = dict(model="frontier-175b", hardware="mi250x-frontier", gpus=128, tp=4, pp=16, micro_batch=1,
             global_batch=64, zero=1, recompute="full", precision="fp16", recipe="deepspeed")


def _cli_estimate(run_cli, **over) -> Estimate:
    flags = {**FLAGS, **over}
    args = []
    for k, v in flags.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    r = run_cli("estimate", *args, "--json")
    assert r.exit_code == 0, r.stderr
    return Estimate.model_validate(json.loads(r.stdout))


def test_keys_change_layout_and_numbers_equal_estimate(run_cli, tmp_path):
    app = ExploreApp(build_scenario(**FLAGS), str(tmp_path / "s.json"), str(tmp_path / "e.txt"))
    seen = {}

    async def drive():
        async with app.run_test() as pilot:
            seen["start"] = str(app.query_one("#numbers").content)
            await pilot.press("t")  # tp 4 -> 8, dp 2 -> 1
            await pilot.pause()
            seen["tp8"] = (app.scenario.layout.tp, app.scenario.layout.dp, str(app.query_one("#numbers").content))
            await pilot.press("r")  # recompute full -> none
            await pilot.pause()
            seen["recompute"] = app.scenario.training.recompute
            await pilot.press("z", "z", "z", "z")  # ZeRO 1 -> 2 -> 3 (Megatron-FSDP takes pp > 1) -> 0 -> 1
            await pilot.pause()
            seen["zero"] = app.scenario.layout.zero_stage
            await pilot.press("s", "e")
            await pilot.pause()
            seen["ms"] = app.update_ms

    asyncio.run(drive())
    for name, value in figures(_cli_estimate(run_cli)).items():
        assert f"{name}: {value}" in seen["start"]
    tp, dp, text = seen["tp8"]
    assert (tp, dp) == (8, 1)
    for name, value in figures(_cli_estimate(run_cli, tp=8)).items():
        assert f"{name}: {value}" in text
    assert seen["recompute"] == "none"
    assert seen["zero"] == 1
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["kind"] == "paraplan-scenario" and saved["layout"]["tp"] == 8
    assert (tmp_path / "e.txt").read_text().strip()


def test_invalid_combination_shows_error_and_keeps_scenario(tmp_path):
    app = ExploreApp(build_scenario(**FLAGS), str(tmp_path / "s.json"), str(tmp_path / "e.txt"))
    out = {}

    async def drive():
        async with app.run_test() as pilot:
            await pilot.press("T", "T", "T")  # tp 4 -> 2 -> 1 -> 0.5 refused
            await pilot.pause()
            out["tp"], out["error"] = app.scenario.layout.tp, str(app.query_one("#error").content)

    asyncio.run(drive())
    assert out["tp"] == 1
    assert "refused" in out["error"]
