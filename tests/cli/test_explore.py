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
    data = json.loads(r.stdout)
    data.pop("evidence")  # estimate --json: the Estimate plus how well it is backed (planner.evidence)
    return Estimate.model_validate(data)


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


def _footer_and_help(tmp_path, size):
    """Footer text, the help screen's text, and whether q then quits, at terminal ``size``."""
    from planner.cli.explore_keys import HelpScreen

    app = ExploreApp(build_scenario(**FLAGS), str(tmp_path / "s.json"), str(tmp_path / "e.txt"))
    out = {}

    async def drive():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            footer = app.query_one("#footer")
            out["footer"] = str(footer.content)
            out["footer_width"] = footer.size.width
            await pilot.press("question_mark")
            await pilot.pause()
            out["screen"] = type(app.screen)
            help_static = app.screen.query_one("#help").query_one("Static")
            out["help_region"] = app.screen.query_one("#help").region
            out["help"] = _plain(help_static, app)
            await pilot.press("escape")
            await pilot.pause()
            out["closed"] = not isinstance(app.screen, HelpScreen)
            await pilot.press("q")
            await pilot.pause()
            out["running"] = app.is_running

    asyncio.run(drive())
    out["help_screen"] = HelpScreen
    return out


def _plain(static, app) -> str:
    """The text a rich renderable inside ``static`` prints at a wide console."""
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(static.renderable if hasattr(static, "renderable") else static.content)
    return console.export_text()


def test_footer_fits_80_and_140_columns_and_help_lists_every_key(tmp_path):
    from planner.cli.explore_app import KNOBS

    for size in ((80, 24), (140, 40)):
        out = _footer_and_help(tmp_path, size)
        footer = out["footer"]
        assert len(footer) <= out["footer_width"] <= size[0], size
        assert "? " in footer and " help" in footer and "q " in footer and " quit" in footer, footer
        assert "t/T" in footer  # upper-case keys shown with their lower-case pair
        assert "for all keys" in footer or "e  export" in footer
        assert out["screen"] is out["help_screen"]
        region = out["help_region"]
        assert region.width <= size[0] and region.height <= size[1], (size, region)
        help_text = out["help"]
        for key in KNOBS:
            if key.islower() and key.upper() in KNOBS:
                assert f"{key} / {key.upper()}" in help_text
            elif key.islower():
                assert f" {key} " in help_text
        for key, word in (("s", "save"), ("e", "export"), ("?", "help"), ("q", "quit")):
            assert f" {key} " in help_text and word in help_text
        assert out["closed"] and not out["running"]
    wide = _footer_and_help(tmp_path, (140, 40))["footer"]
    narrow = _footer_and_help(tmp_path, (80, 24))["footer"]
    assert len(wide) > len(narrow)  # the footer uses the width it has


def test_footer_text_never_cuts_an_entry():
    from planner.cli.explore_keys import MORE, footer_text

    entries = [(f"{c}/{c.upper()}", "knob " * 2) for c in "abcdefghij"]
    for width in range(40, 200, 7):  # from "? help  q quit  ? for all keys" up
        line = footer_text(entries, width).plain
        assert len(line) <= width
        assert line.lstrip().startswith("?  help   q  quit")
        shown = [k for k, _ in entries if f" {k} " in line]
        assert shown == [k for k, _ in entries][: len(shown)]  # a prefix, in order, whole entries
        assert (len(shown) < len(entries)) == (MORE in line)


def test_explorer_keys_obey_the_framework_and_speak_in_its_words(tmp_path):
    """Under --framework megatron a key that makes a layout Megatron cannot launch is refused with the
    framework's reason; messages name the knob (tp, micro-batch), not the --set key; saving a layout
    that does not fit writes it and warns."""
    import asyncio

    from planner.cli.common import build_scenario
    from planner.cli.explore_app import ExploreApp, tui_words

    assert tui_words("--set: layout.tp: 3 must divide") == "tp: 3 must divide"
    scenario = build_scenario(model="gpt3-1.3b", hardware="a100-sxm-80gb", gpus=8, pp=4, vpp=2, global_batch=16,
                              framework="megatron")
    app = ExploreApp(scenario, str(tmp_path / "s.json"), str(tmp_path / "e.txt"), framework="megatron")
    seen = {}

    async def drive():
        async with app.run_test() as pilot:
            await pilot.press("b", "b")  # micro-batch 2 runs; 4 leaves 16 / (4 x dp 2) = 2 < pp micro-batches
            await pilot.pause()
            seen["error"] = str(app.query_one("#error").content)
            seen["mb"] = app.scenario.training.micro_batch_size
            for _ in range(16):
                await pilot.press("H")  # HBM down (x0.8 a key) until the layout no longer fits
            await pilot.press("s")
            await pilot.pause()
            seen["saved"] = str(app.query_one("#error").content)

    asyncio.run(drive())
    assert "refused" in seen["error"] and "framework megatron" in seen["error"] and "--set" not in seen["error"]
    assert seen["mb"] == 2
    assert (tmp_path / "s.json").exists() and seen["saved"].startswith("warning: saved a layout that does not fit")
