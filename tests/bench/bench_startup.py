"""Benchmark (prints figures, asserts nothing about time): how fast ``paraplan`` starts.

    python tests/bench/bench_startup.py [--repeats 7] [--top 12] [--root DIR]

``--root DIR`` measures another copy of the source (e.g. ``git archive <commit> | tar -x -C DIR``),
put first on PYTHONPATH, for before/after figures.

For each command below it runs the real entry point in a fresh process ``--repeats`` times and
prints the whole-process CPU seconds (user + system of the child, from ``resource.getrusage``;
the minimum over the repeats, because other processes on a shared machine only ever add time)
and the median wall time; then the ``python -X importtime`` cumulative top entries of each.
Issue 15 targets: ``--help``, ``hw list``, ``model show`` <= 0.3 CPU-s; ``estimate`` <= 0.5 CPU-s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

COMMANDS: dict[str, list[str]] = {
    "paraplan --help": ["--help"],
    "paraplan hw list": ["hw", "list"],
    "paraplan model show": ["model", "show", "gpt3-1.3b"],
    "paraplan estimate": ["estimate", "-m", "gpt3-1.3b", "-H", "a100-sxm-80gb", "-g", "8", "--global-batch", "64"],
}
TARGET_S = {"paraplan --help": 0.3, "paraplan hw list": 0.3, "paraplan model show": 0.3, "paraplan estimate": 0.5}


def _entry() -> list[str]:
    """The interpreter running the CLI module (the same code the ``paraplan`` script runs)."""
    return [sys.executable, "-m", "planner"]


ENV = {**os.environ, "COLUMNS": "120"}


def cpu_seconds(args: list[str], repeats: int) -> tuple[float, float]:
    """(min CPU seconds, median wall seconds) of ``paraplan ARGS`` over ``repeats`` fresh processes."""
    cpu, wall = [], []
    env = ENV
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run([*_entry(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {done.stderr.decode()[-500:]}")
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(cpu), statistics.median(wall)


def import_top(args: list[str], top: int) -> list[tuple[float, str]]:
    """The ``top`` imports with the largest cumulative time (seconds, module) of one run."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "planner", *args], capture_output=True,
                          text=True, env=ENV)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if cumulative.isdigit():
            rows.append((int(cumulative) / 1e6, name))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--root", help="source tree to measure instead of the installed one")
    opts = parser.parse_args()
    if opts.root:
        ENV["PYTHONPATH"] = os.path.abspath(opts.root) + os.pathsep + ENV.get("PYTHONPATH", "")
    base_cpu, base_wall = cpu_seconds_python(opts.repeats)
    print(f"load average {os.getloadavg()[0]:.2f}; {opts.repeats} runs each; CPU = min, wall = median")
    print(f"{'command':24s} {'CPU s':>7s} {'wall s':>7s} {'target':>7s}")
    print(f"{'python -c pass':24s} {base_cpu:7.3f} {base_wall:7.3f} {'':>7s}")
    for name, args in COMMANDS.items():
        cpu, wall = cpu_seconds(args, opts.repeats)
        mark = "ok" if cpu <= TARGET_S[name] else "OVER"
        print(f"{name:24s} {cpu:7.3f} {wall:7.3f} {TARGET_S[name]:6.1f}s {mark}")
    for name, args in COMMANDS.items():
        print(f"\n-X importtime, {name} (cumulative seconds, one run):")
        for seconds, module in import_top(args, opts.top):
            print(f"  {seconds:6.3f}  {module}")


def cpu_seconds_python(repeats: int) -> tuple[float, float]:
    """The interpreter's own start-up, for reference."""
    cpu, wall = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(cpu), statistics.median(wall)


if __name__ == "__main__":
    main()
