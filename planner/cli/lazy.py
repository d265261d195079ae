"""Lazy command loading: ``paraplan --help`` lists every command without importing any of them, and
``paraplan CMD`` imports only the module(s) that define CMD.

Each command module registers itself on :data:`planner.cli.app.app` when imported (``@app.command()``
or ``app.add_typer``); :class:`LazyGroup` (its subclass in planner/cli/app.py names that app, so this
module never imports the app) imports the module named in :data:`COMMANDS` the first time
a command is resolved and then builds it with ``typer.main.get_command``, so command functions keep
their names and signatures and stay importable on their own.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

from typer.core import TyperGroup


class CommandEntry(NamedTuple):
    """Where a top-level command lives and the one-line help ``paraplan --help`` shows for it."""

    modules: tuple[str, ...]
    help: str


#: Top-level commands in the order ``--help`` lists them. The help text is each command's
#: docstring summary (tests/cli/test_fuzz.py::test_lazy_registry_matches_modules keeps them equal).
COMMANDS: dict[str, CommandEntry] = {
    "estimate": CommandEntry(("estimate_cmd",), "Predict one training step of one layout: time, throughput, MFU/HFU, memory per stage."),
    "explore": CommandEntry(("explore_app",), "Interactive explorer: change tp/pp/micro-batch/ZeRO/recompute/GPUs/NIC/links/HBM by keys."),
    "plan": CommandEntry(("plan_cmd",), "Search layouts (tp, pp, vpp, dp, ZeRO, micro-batch, recompute, schedule), rank and explain them."),
    "run": CommandEntry(("run_cmd",), "Price a whole training run: stages, batch ramp, checkpoints, failures and restarts, in days and GPU-hours."),
    "simulate": CommandEntry(("simulate_cmd",), "Simulate one training step event by event: schedule, overlap, NIC contention, memory over time."),
    "calibrate": CommandEntry(("calibrate_cmd",), "Fit pricing parameters from traced jobs (launched, or your own) and microbenchmarks; write an overlay."),
    "whatif": CommandEntry(("whatif_cmd",), "Compare a base scenario with variants: step time, tokens/s, MFU, memory, breakdown, bottleneck."),
    "sweep": CommandEntry(("whatif_cmd",), "Estimate over a grid of values; weak/strong scaling curves with scaling efficiency."),
    "sensitivity": CommandEntry(("whatif_cmd",), "Elasticity of step time to each hardware and model parameter (±10 %), ranked: the bottleneck list."),
    "bench": CommandEntry(("bench_cmd", "bench_speed_cmd", "readme_cmd"), "Benchmarks of paraplan itself: accuracy and speed."),
    "hw": CommandEntry(("hw_cmd",), "Hardware profiles: devices, node topology, network."),
    "model": CommandEntry(("model_cmd",), "Model zoo and Hugging Face config.json import."),
    "report": CommandEntry(("report_cmd",), "Regenerate the case-study reports (Markdown with PNG plots)."),
    "validate": CommandEntry(("validate_cmd",), "Run layouts for real (torch.distributed), compare with the model, calibrate."),
    "trials": CommandEntry(("trials_cmd",), "Trial runs of the top plans: run them, read their traces back, re-rank by measured steps."),
    "trace": CommandEntry(("trace_cmd",), "PyTorch profiler traces: where a real step's time went, next to paraplan's prediction."),
}


def load_all() -> None:
    """Import every command module (for tests and tools that want the whole app at once)."""
    for entry in COMMANDS.values():
        for module in entry.modules:
            importlib.import_module(f"planner.cli.{module}")


class LazyGroup(TyperGroup):
    """A typer group whose commands are imported on first use (see the module docstring)."""

    _listing = False

    def typer_app(self):
        """The typer application whose registered commands this group builds (planner/cli/app.py)."""
        raise NotImplementedError

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS) + [name for name in self.commands if name not in COMMANDS]

    def get_command(self, ctx, cmd_name: str):
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if self._listing:  # help page: name and summary only, nothing imported
            from typer.core import TyperCommand

            return TyperCommand(cmd_name, help=entry.help, short_help=entry.help)
        for module in entry.modules:
            importlib.import_module(f"planner.cli.{module}")
        import typer.main

        built = typer.main.get_command(self.typer_app())
        command = built.commands.get(cmd_name) if hasattr(built, "commands") else None
        if command is not None:
            self.commands[cmd_name] = command
        return command

    def resolve_command(self, ctx, args):
        """As typer's, but "did you mean" looks at every command, not only the imported ones."""
        from typer._click.exceptions import UsageError

        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            import difflib

            matches = difflib.get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches and "Did you mean" not in exc.message:
                exc.message = exc.message.rstrip(".") + ". Did you mean " + ", ".join(map(repr, matches)) + "?"
            raise

    def format_help(self, ctx, formatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
