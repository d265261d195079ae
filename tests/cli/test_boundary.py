"""The CLI's error boundary, output-path checks and the input refusals of issue 15 (defects 1-4, 9, 12-15)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
import yaml

from hwprofiles.loader import hardware_dir, models_dir

BASE = ["-m", "gpt3-125m", "-H", "a100-sxm-80gb", "-g", "8", "--global-batch", "16"]


def _one_error_line(res) -> str:
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    return lines[0]


# --- the boundary -------------------------------------------------------------------------------
def test_internal_error_is_one_line_exit_3_and_traceback_only_with_debug(run_cli, monkeypatch):
    import planner.cli.common as common

    def boom(**_):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(common, "build_scenario", boom)
    monkeypatch.delenv("PARAPLAN_DEBUG", raising=False)
    res = run_cli("estimate", *BASE)
    assert res.exit_code == 3
    line = _one_error_line(res)
    assert "paraplan estimate failed: RuntimeError: kaboom" in line and "--debug" in line
    res = run_cli("--debug", "estimate", *BASE)
    assert res.exit_code == 3 and "Traceback (most recent call last)" in res.stderr
    monkeypatch.setenv("PARAPLAN_DEBUG", "1")
    import planner.cli.debug as debug_state

    monkeypatch.setattr(debug_state, "DEBUG", False)
    res = run_cli("estimate", *BASE)
    assert res.exit_code == 3 and "Traceback (most recent call last)" in res.stderr


def test_ctrl_c_prints_one_interrupted_line(run_cli, monkeypatch):
    import planner.cli.common as common

    def interrupted(**_):
        raise KeyboardInterrupt

    monkeypatch.setattr(common, "build_scenario", interrupted)
    res = run_cli("estimate", *BASE)
    assert res.exit_code == 130
    assert _one_error_line(res) == "error: interrupted"


def test_help_lists_every_command_without_importing_them():
    import subprocess

    code = ("import sys; from planner.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "bad = [m for m in ('planner.cli.estimate_cmd', 'planner.cli.explore_app', 'textual', 'networkx', "
            "'numpy', 'pydantic') if m in sys.modules]\nprint('IMPORTED', bad)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "IMPORTED []" in done.stdout, done.stdout[-500:] + done.stderr[-500:]
    from planner.cli.lazy import COMMANDS

    for name in COMMANDS:
        assert name in done.stdout


def test_lazy_registry_matches_the_command_modules():
    """Every registered command is in planner.cli.lazy.COMMANDS with its docstring summary."""
    import typer.main

    from planner.cli.app import app
    from planner.cli.lazy import COMMANDS, load_all

    load_all()
    group = typer.main.get_command(app)
    assert set(group.commands) == set(COMMANDS)
    for name, cmd in group.commands.items():
        summary = (cmd.help or "").strip().split("\n")[0]
        assert summary == COMMANDS[name].help, name


def test_every_module_that_registers_a_command_is_in_the_lazy_registry():
    """A command module missing from planner.cli.lazy.COMMANDS would never be imported (its command
    silently absent): every module under planner/cli that registers one must be listed."""
    import re

    from planner.cli.lazy import COMMANDS

    listed = {m for entry in COMMANDS.values() for m in entry.modules}
    folder = Path(__file__).resolve().parents[2] / "planner" / "cli"
    for path in sorted(folder.glob("*.py")):
        if re.search(r"^@\w*app\.command|^\w*app\.add_typer\(", path.read_text(), re.M):
            assert path.stem in listed, f"{path.name} registers a command but is not in planner.cli.lazy.COMMANDS"


def test_help_shows_the_defaults(run_cli):
    res = run_cli("estimate", "--help")
    text = " ".join(res.stdout.split())
    for option, default in (("--seq", "2048"), ("--zero", "0"), ("--micro-batch", "1"), ("--precision", "bf16"),
                            ("--recipe", "megatron"), ("--schedule", "1f1b"), ("--recompute", "none")):
        assert f"[default: ({default}" in text.split(option, 1)[1][:400], option


# --- output paths (defect 2) --------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["plan", *BASE, "--export", "json", "--out", "/proc/x"],
    ["plan", *BASE, "--export", "json", "--out", "{dir}"],
    ["simulate", *BASE, "--png", "/proc/x.png"],
    ["simulate", *BASE, "--trace", "{dir}"],
    ["simulate", *BASE, "--png", "{dir}/out.txt"],
    ["sweep", *BASE, "--vary", "gpus=8,16", "--csv", "/proc/x.csv"],
    ["whatif", *BASE, "--save", "/proc/x.json"],
    ["report", "frontier", "--out", "/proc/x"],
    ["calibrate", "--microbench-only", "--out", "/proc/x.yaml"],
    ["explore", *BASE, "--save-to", "/proc/x.json"],
    ["explore", *BASE, "--export-to", "{dir}"],
    ["validate", "run", "--out", "/proc/x.json"],
])
def test_unwritable_output_is_one_line_exit_2_before_any_work(run_cli, tmp_path, args):
    args = [a.replace("{dir}", str(tmp_path)) for a in args]
    res = run_cli(*args)
    assert res.exit_code == 2
    line = _one_error_line(res)
    assert line.startswith("error: --")
    assert list(tmp_path.iterdir()) == []


def test_missing_matplotlib_is_one_line_and_nothing_written(run_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` sees when not installed
    for args in (["simulate", *BASE, "--png", str(tmp_path / "s.png"), "--trace", str(tmp_path / "t.json")],
                 ["sweep", *BASE, "--vary", "gpus=8,16", "--png", str(tmp_path / "w.png"),
                  "--csv", str(tmp_path / "w.csv")],
                 ["report", "frontier", "--out", str(tmp_path / "frontier")]):
        res = run_cli(*args)
        assert res.exit_code == 2, res.stderr
        assert "needs paraplan[plot]: pip install 'paraplan[plot]'" in _one_error_line(res)
        assert list(tmp_path.iterdir()) == []


def test_atomic_output_leaves_nothing_when_the_writer_fails(tmp_path):
    from planner.outputs import atomic_output

    with pytest.raises(RuntimeError), atomic_output(tmp_path / "x.png") as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert list(tmp_path.iterdir()) == []


def test_report_frontier_default_is_the_checkout_not_the_cwd(tmp_path, monkeypatch):
    from planner.cli.report_cmd import default_stem

    monkeypatch.chdir(tmp_path)
    assert default_stem() == Path(__file__).resolve().parents[2] / "docs" / "frontier"
    md = (Path(__file__).resolve().parents[2] / "planner" / "report" / "frontier_md.py").read_text()
    assert "shared/data" not in md and "frontier_paper.md" not in md


# --- the explorer (defect 1) --------------------------------------------------------------------
def test_explorer_write_failure_is_an_error_line_and_the_app_keeps_running(tmp_path):
    from planner.cli.common import build_scenario
    from planner.cli.explore_app import ExploreApp

    blocked = tmp_path / "now-a-folder.json"
    app = ExploreApp(build_scenario(model="gpt3-125m", hardware="a100-sxm-80gb", gpus=8, global_batch=16),
                     str(blocked), str(tmp_path / "e.txt"))
    seen = {}

    async def drive():
        async with app.run_test() as pilot:
            blocked.mkdir()  # the save path became unwritable after the start-up check
            await pilot.press("s")
            await pilot.pause()
            seen["error"] = str(app.query_one("#error").content)
            await pilot.press("t")
            await pilot.pause()
            seen["tp"] = app.scenario.layout.tp
            seen["running"] = app.is_running

    asyncio.run(drive())
    assert seen["error"].startswith("save failed:") and f"'{blocked}' is a folder" in seen["error"]
    assert seen["tp"] == 2 and seen["running"]


def test_explorer_crash_never_exits_0(run_cli, monkeypatch, tmp_path):
    from planner.cli import explore_app

    def crashed_run(self):
        self._return_code = 1

    monkeypatch.setattr(explore_app.ExploreApp, "run", crashed_run)
    res = run_cli("explore", *BASE, "--save-to", str(tmp_path / "s.json"))
    assert res.exit_code == 3
    assert "explorer stopped on an error" in _one_error_line(res)


# --- plain inputs (defect 4) --------------------------------------------------------------------
@pytest.mark.parametrize("args, option", [
    (["estimate", "-m", "", "-H", "a100-sxm-80gb", "-g", "8", "--global-batch", "16"], "--model"),
    (["estimate", "-m", "gpt3-125m", "-H", "", "-g", "8", "--global-batch", "16"], "--hardware"),
    (["estimate", *BASE, "--tp", "0"], "--tp"),
    (["sweep", *BASE, "--vary", "gpus=a,b"], "--vary"),
    (["plan", "-m", "", "-H", "a100-sxm-80gb", "-g", "8", "--global-batch", "16"], "--model"),
])
def test_plain_inputs_are_one_line(run_cli, args, option):
    res = run_cli(*args)
    assert res.exit_code == 2
    assert option in _one_error_line(res)


def test_binary_config_json_is_one_line(run_cli, tmp_path):
    (tmp_path / "config.json").write_bytes(bytes(range(256)))
    for args in (["model", "show", str(tmp_path / "config.json")], ["model", "show", str(tmp_path)]):
        res = run_cli(*args)
        assert res.exit_code == 2
        assert "not a text file" in _one_error_line(res)


# --- silent acceptances (defect 12) -------------------------------------------------------------
def _profile(tmp_path, **device) -> str:
    data = yaml.safe_load((hardware_dir() / "a100-sxm-80gb.yaml").read_text())
    data["device"].update(device)
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_silent_acceptances_are_refused(run_cli, tmp_path):
    data = yaml.safe_load((hardware_dir() / "a100-sxm-80gb.yaml").read_text())
    data["device"]["peak_tflops"]["bf16"] = float("inf")
    (tmp_path / "inf.yaml").write_text(yaml.safe_dump(data))
    model = yaml.safe_load((models_dir() / "gpt3-125m.yaml").read_text())
    model["num_layers"] = True
    (tmp_path / "bool.yaml").write_text(yaml.safe_dump(model))
    (tmp_path / "overlay.yaml").write_text("calibration:\n  base: h100-sxm-80gb\n")
    res = run_cli("plan", *BASE, "--export", "json", "--out", str(tmp_path / "s.json"))
    assert res.exit_code == 0, res.stderr
    scenario = json.loads((tmp_path / "s.json").read_text())
    scenario["version"] = 99
    (tmp_path / "v99.json").write_text(json.dumps(scenario))
    cases = [
        (["estimate", "-m", "gpt3-125m", "-H", str(tmp_path / "inf.yaml"), "-g", "8", "--global-batch", "16"],
         "device.peak_tflops.bf16: Input should be a finite number"),
        (["estimate", "--layout", str(tmp_path / "v99.json")], "version: 99 is not a scenario version"),
        (["model", "show", str(tmp_path / "bool.yaml")], "num_layers: expected a number, got true"),
        (["estimate", *BASE, "--calibration", str(tmp_path / "overlay.yaml")],
         "an overlay made for base profile 'h100-sxm-80gb', not for 'a100-sxm-80gb'"),
        (["estimate", *BASE, "--fsdp", "--zero", "1"], "--fsdp: shards parameters like ZeRO-3"),
        (["estimate", *BASE, "--seq", "4096"], "--seq: 4096 is above gpt3-125m's 2048 learned positions"),
        (["simulate", *BASE, "--samples", "5"], "--samples: 5 samples without --jitter"),
        (["plan", *BASE, "--out", str(tmp_path / "f.json")], "--out: writes the --export text"),
    ]
    for args, expected in cases:
        res = run_cli(*args)
        assert res.exit_code == 2, (args, res.stdout[-300:], res.stderr)
        assert expected in _one_error_line(res), args
    assert not (tmp_path / "f.json").exists()


def test_seq_above_rope_positions_warns_and_estimates(run_cli):
    res = run_cli("estimate", "-m", "llama2-7b", "-H", "a100-sxm-80gb", "-g", "8", "--global-batch", "16",
                  "--seq", "8192", "--json")
    assert res.exit_code == 0
    assert "warning: --seq 8192 is above llama2-7b's max_position_embeddings 4096" in res.stderr
    json.loads(res.stdout)


def test_errors_name_the_option_typed(run_cli):
    res = run_cli("estimate", *BASE[:-1], "15", "--micro-batch", "2")
    assert _one_error_line(res).startswith("error: --global-batch:")
    res = run_cli("estimate", *BASE, "--zero", "5")
    assert _one_error_line(res).startswith("error: --zero:")
    # a layout the recipe's framework refuses names the option that chose the framework
    res = run_cli("estimate", *BASE, "--zero", "3", "--pp", "2", "--recipe", "deepspeed")
    assert _one_error_line(res).startswith("error: --recipe deepspeed:")


# --- validate hand-off (defect 9), calibrate warnings (defect 13) -------------------------------
def test_validate_run_and_report_default_to_results_json(run_cli, tmp_path, monkeypatch):
    import inspect

    from planner.cli.validate_cmd import run

    assert inspect.signature(run).parameters["out"].default == Path("results.json")
    monkeypatch.chdir(tmp_path)
    res = run_cli("validate", "report")
    assert res.exit_code == 2
    assert "results.json" in _one_error_line(res)


class _Row:
    def __init__(self, layout, measured_s):
        self.layout, self.measured_s = layout, measured_s


class _Report:
    def __init__(self, held_out_error_pct, rows):
        self.held_out, self.held_out_error_pct, self.layouts = "tp=2,sp", held_out_error_pct, rows


def test_calibrate_warns_on_large_held_out_error_and_spread():
    from validate.fit_quality import fit_warnings

    quiet = _Report([2.5, 15.7, 24.3], [_Row("tp=2", 1.00), _Row("tp=2", 1.05), _Row("pp=2", 2.0)])
    assert fit_warnings(quiet) == []
    loaded = _Report([59.0, 72.0], [_Row("tp=2", 1.00), _Row("tp=2", 1.60), _Row("tp=2", 1.10)])
    warnings = fit_warnings(loaded)
    assert len(warnings) == 2
    assert "held-out tp=2,sp: error +59.0 % .. +72.0 % over 2 run(s), beyond ±30 %" in warnings[0]
    assert "repeats of tp=2 spread 55 % (1 s .. 1.6 s, above 25 %)" in warnings[1]
    assert fit_warnings(_Report([-31.0], [])) and not fit_warnings(_Report([-29.0], []))


# --- model naming (defect 14) -------------------------------------------------------------------
def test_model_show_names_hf_configs_by_file_or_name_or_path(run_cli, tmp_path):
    src = Path(__file__).resolve().parents[1] / "data" / "hf" / "llama3-8b" / "config.json"
    (tmp_path / "x-config.json").write_text(src.read_text())
    folder = tmp_path / "My-Model"
    folder.mkdir()
    (folder / "config.json").write_text(src.read_text())
    data = json.loads(src.read_text())
    data["_name_or_path"] = "meta-llama/Meta-Llama-3-8B"
    (tmp_path / "named.json").write_text(json.dumps(data))
    for arg, name in ((tmp_path / "x-config.json", "x"), (folder, "My-Model"), (tmp_path / "named.json",
                                                                                 "Meta-Llama-3-8B")):
        res = run_cli("model", "show", str(arg), "--json")
        assert res.exit_code == 0, res.stderr
        assert json.loads(res.stdout)["model"]["name"] == name
    (tmp_path / "empty").mkdir()
    res = run_cli("model", "show", str(tmp_path / "empty"))
    assert res.exit_code == 2 and "without config.json" in _one_error_line(res)
