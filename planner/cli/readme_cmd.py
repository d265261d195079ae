"""``paraplan bench readme``: rerun the commands whose figures the README and docs quote, and print
the date, the machine's load and every figure as the text should write it, with whether the file
still holds it ("stale" when not: update the text, or the model moved on purpose).

Each :class:`Figure` is a quoted ``paraplan`` command line (run in this process with ``--json``, so
the figure is exactly what a user gets) and how its figure is written in the file. A new quoted
figure is a new entry of :data:`FIGURES`. Timings (the README's speed table) depend on the machine
and are measured by ``paraplan bench speed`` and tests/bench/, not here.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..errors import SpecError
from .app import JSON_OPTION, console, print_json
from .bench_cmd import bench_app
from .boundary import main

ROOT = Path(__file__).resolve().parents[2]
GIB = 2**30


@dataclass(frozen=True)
class Figure:
    """A figure quoted in ``file`` (repository-relative), produced by ``paraplan ARGV --json`` and
    written as ``text(json)``; several pieces joined by `` ... `` must each appear in the file."""

    name: str
    file: str
    argv: tuple[str, ...]
    text: Callable[[Any], str]


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _run_plan(d: dict) -> str:
    t = d["totals"]
    return f"{t['gpu_hours'] / 1e6:.2f}M ... {_pct(t['goodput'])} ... {t['wall_days']:.1f} days"


def _best(d: dict) -> dict:
    return d["best"]["estimate"]


PLAN_8B = ("--model", "llama3.1-8b", "--hardware", "h100-sxm-96gb-500w", "--gpus", "8", "--global-batch", "16",
           "--seq", "8192", "--recipe", "torchtitan")
TORCHTITAN_ROWS = ("bench", "accuracy", "hwprofiles/data/torchtitan_runs.csv")


def _plan_rows(d: dict) -> str:
    return " ... ".join(f"{p['estimate']['step_time_s']:.2f} s │ {p['estimate']['tokens_per_s']:,.0f} │ "
                        f"{_pct(p['estimate']['mfu'])}" for p in d["plans"][:3])


def _whatif(d: dict) -> str:
    base = d["base"]["estimate"]
    out = []
    for v in d["variants"]:
        e = v["estimate"]
        out.append(f"{e['step_time_s']:.2f} s ({100 * (e['step_time_s'] / base['step_time_s'] - 1):+.1f}%)")
        out.append(f"{_pct(e['mfu'])} ({100 * (e['mfu'] - base['mfu']):+.1f} pt)")
    return " ... ".join(out)


def _time_and_memory(d: dict) -> str:
    return (f"| {d['summary']['all_rows']['rows']} | {d['summary']['all_rows']['median_abs_error_pct']:.1f} % | "
            f"{d['summary']['memory']['median_abs_error_pct']:.1f} % (reserved)")


def _recipe(name: str) -> Callable[[Any], str]:
    def text(d: dict) -> str:
        g = d["summary"]["by_recipe"][name]
        return f"| {g['rows']} | {g['median_abs_error_pct']:.1f} % |"
    return text


FIGURES: tuple[Figure, ...] = (
    Figure("worked example: plan of Llama 3.1 8B on 8 H100 500 W (torchtitan)", "README.md",
           ("plan", *PLAN_8B, "--top", "3"), _plan_rows),
    Figure("worked example: the report's own setting (micro-batch 2, op SAC)", "README.md",
           ("estimate", *PLAN_8B, "--zero", "3", "--micro-batch", "2", "--recompute", "op"),
           lambda d: f"predicted at {_pct(d['mfu'])}"),
    Figure("worked example: what-if 700 W / tp 2", "README.md",
           ("whatif", *PLAN_8B, "--zero", "3", "--micro-batch", "1", "--set", "device.power_limit_w=700",
            "--set", "layout.tp=2 layout.sequence_parallel=true"), _whatif),
    Figure("torchtitan runs: time and reserved memory", "README.md", TORCHTITAN_ROWS, _time_and_memory),
    Figure("torchtitan June 2025 runs: time and reserved memory", "README.md",
           ("bench", "accuracy", "hwprofiles/data/torchtitan_runs_2025.csv"), _time_and_memory),
    Figure("LLM Foundry H100 runs: time", "README.md", ("bench", "accuracy", "hwprofiles/data/llmfoundry_h100_runs.csv"),
           lambda d: f"| {d['summary']['all_rows']['rows']} | **{d['summary']['all_rows']['median_abs_error_pct']:.1f} %**"),
    *(Figure(f"published runs: recipe {r}", "README.md", ("bench", "accuracy"), _recipe(r))
      for r in ("megatron-core", "megatron-lm", "llm-foundry-2309")),
    Figure("published runs: deepspeed / deepspeed-2021", "README.md", ("bench", "accuracy"),
           lambda d: (f"{d['summary']['by_recipe']['deepspeed']['median_abs_error_pct']:.1f} % / "
                      f"{d['summary']['by_recipe']['deepspeed-2021']['median_abs_error_pct']:.1f} %")),
    Figure("published runs: MoE rows", "README.md", ("bench", "accuracy"),
           lambda d: f"| {d['summary']['moe_rows']['rows']} | {d['summary']['moe_rows']['median_abs_error_pct']:.1f} % |"),
    Figure("published runs: all rows / fully stated / dense / H100", "README.md", ("bench", "accuracy"),
           lambda d: (f"fully stated dense ({d['summary']['fully_stated']['rows']}) | "
                      f"{d['summary']['fully_stated']['median_abs_error_pct']:.1f} % ... dense "
                      f"{d['summary']['dense_rows']['median_abs_error_pct']:.1f} % over {d['summary']['dense_rows']['rows']} ... "
                      f"all predicted dense and MoE rows ({d['summary']['all_rows']['rows']}) | "
                      f"{d['summary']['all_rows']['median_abs_error_pct']:.1f} % ... "
                      f"H100 ({d['summary']['by_hardware']['h100-sxm-80gb']['rows']}) … "
                      f"{d['summary']['by_hardware']['h100-sxm-80gb']['median_abs_error_pct']:.1f} % dense")),
    Figure("measured single-GPU steps", "README.md", ("bench", "steps"),
           lambda d: (f"| {len(d['cases'])} | {d['median_abs_time_error_pct']:.1f} % | "
                      f"{d['median_abs_memory_error_pct']:.1f} % (allocated)")),
    Figure("Llama 3 405B pre-training, run plan (GPU-hours, goodput, days)", "docs/run-plan.md", ("run", "llama3-405b"),
           _run_plan),
    Figure("Llama 3 405B pre-training in the README", "README.md", ("run", "llama3-405b"), _run_plan),
    Figure("DeepSeek-V3 on 2,048 H800, fp8, DeepEP", "README.md",
           ("plan", "--model", "tests/data/hf/deepseek-v3/config.json", "--hardware", "h800", "--gpus", "2048",
            "--global-batch", "15360", "--seq", "4096", "--precision", "fp8", "--moe-dispatcher", "deepep"),
           lambda d: (f"| {_best(d)['tokens_per_s'] / _best(d)['gpus']:,.0f} "
                      f"({100 * (_best(d)['tokens_per_s'] / _best(d)['gpus'] / 1543 - 1):+.1f} %)").replace("-", "−")),
)


def run_json(argv: tuple[str, ...]) -> Any:
    """``paraplan ARGV --json`` in this process (from the repository root, where the quoted paths
    live); SpecError naming the command when it fails."""
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([*argv, "--json"])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0
    finally:
        os.chdir(cwd)
    if code:
        raise SpecError(f"`paraplan {' '.join(argv)}` failed: {err.getvalue().strip()[:300]}", field="bench readme")
    return json.loads(out.getvalue())


def _normalise(text: str) -> str:
    return " ".join(text.replace("**", "").replace(" %", "%").replace("`", "").split())


def compute(names: list[str] | None = None) -> list[dict]:
    """Every figure (or those whose name contains one of ``names``), computed now."""
    cache: dict[tuple[str, ...], Any] = {}
    rows = []
    for fig in FIGURES:
        if names and not any(n.lower() in fig.name.lower() for n in names):
            continue
        if fig.argv not in cache:
            cache[fig.argv] = run_json(fig.argv)
        value = fig.text(cache[fig.argv])
        path = ROOT / fig.file
        text = _normalise(path.read_text()) if path.is_file() else ""
        quoted = all(_normalise(piece) in text for piece in value.split(" ... "))
        rows.append({"name": fig.name, "file": fig.file, "command": "paraplan " + " ".join(fig.argv), "value": value,
                     "quoted": quoted})
    return rows


@bench_app.command("readme")
def readme(
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Figures whose name contains TEXT "
                                                     "(repeatable; default: all).")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Recompute the figures the README quotes: date, machine load, each figure and whether the text holds it."""
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = compute(only)
    if only and not rows:
        raise SpecError(f"no figure matches {', '.join(only)}; figures: {', '.join(f.name for f in FIGURES)}",
                        field="--only")
    if json_out:
        print_json({"date": now, "load_1min": load, "cpus": os.cpu_count(), "figures": rows})
        return
    console.print(Text(f"figures of {now}, load {load:.2f} on {os.cpu_count()} CPUs" if load is not None
                       else f"figures of {now}", style="bold"), highlight=False)
    table = Table(show_lines=True)
    for col in ("figure", "value (as the file should write it)", "file", "status"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["value"], r["file"],
                      Text("quoted", style="green") if r["quoted"] else Text("stale", style="bold red"))
    console.print(table)
    stale = [r for r in rows if not r["quoted"]]
    if stale:
        console.print(Text(f"{len(stale)} figure(s) stale: update {', '.join(sorted({r['file'] for r in stale}))} "
                           "(the command of each: --json)", style="yellow"), highlight=False)
