"""``paraplan explore``: a Textual app that re-estimates a scenario on every key press.

Knobs (lower case = up / next, upper case = down / previous): t/T tp, p/P pp, b/B micro-batch,
g/G GPU count (x2 / ÷2; dp re-derived), z ZeRO stage, r recompute, n/N NIC bandwidth (x1.25),
l/L intra-node link bandwidth (x1.25), h/H HBM capacity (x1.25); s saves the scenario (JSON,
atomic), e exports it (Megatron arguments when planner.exports is present, else JSON), ? shows
every key, q quits. The footer fits the terminal width (``? help`` and ``q quit`` always shown).
An invalid combination is shown as an error and the previous scenario is kept.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Header, Static

from ..cost.result import Estimate
from ..errors import ParaplanError, SpecError
from ..scenario import Scenario
from ..whatif import apply_settings
from . import common as c
from .app import app as cli_app
from .app import print_json, write_atomic
from .boundary import describe
from .explore_keys import HelpScreen, KeyFooter, help_table, pair_entries
from .render import GIB, TIME_COLORS, fmt_seconds, stacked_bar

ZERO_STAGES = ("0", "1", "2", "3")
RECOMPUTE = ("none", "selective", "full")
STEP = "1.25"

# key -> (description, --set key, value or callable(scenario) -> value)
KNOBS: dict[str, tuple[str, str, object]] = {
    "t": ("tp up", "layout.tp", "x2"), "T": ("tp down", "layout.tp", "x0.5"),
    "p": ("pp up", "layout.pp", "x2"), "P": ("pp down", "layout.pp", "x0.5"),
    "b": ("micro-batch up", "training.micro_batch", "x2"), "B": ("micro-batch down", "training.micro_batch", "x0.5"),
    "g": ("GPUs x2", "gpus", "x2"), "G": ("GPUs ÷2", "gpus", "x0.5"),
    "z": ("ZeRO next", "layout.zero_stage",
          lambda s: _cycle(ZERO_STAGES, str(s.layout.zero_stage))),
    "r": ("recompute next", "training.recompute", lambda s: _cycle(RECOMPUTE, s.training.recompute)),
    "n": ("NIC bw up", "hardware.nic_bandwidth", f"x{STEP}"),
    "N": ("NIC bw down", "hardware.nic_bandwidth", f"x{1 / float(STEP):g}"),
    "l": ("link bw up", "hardware.link_bandwidth", f"x{STEP}"),
    "L": ("link bw down", "hardware.link_bandwidth", f"x{1 / float(STEP):g}"),
    "h": ("HBM up", "hardware.hbm_capacity", f"x{STEP}"),
    "H": ("HBM down", "hardware.hbm_capacity", f"x{1 / float(STEP):g}"),
}


#: Spec keys and CLI options as the explorer's keys name them (its messages use the app's words).
TUI_WORDS = (("--set: ", ""), ("--vary: ", ""), ("layout.zero_stage", "ZeRO stage"), ("training.micro_batch_size",
             "micro-batch"), ("training.micro_batch", "micro-batch"), ("training.recompute", "recompute"),
             ("layout.tp", "tp"), ("layout.pp", "pp"), ("layout.dp", "dp"), ("hardware.", ""),
             ("--framework ", "framework "), ("--recipe ", "recipe "))


def tui_words(message: str) -> str:
    """``message`` with spec keys and options replaced by what the explorer's keys call them."""
    for old, new in TUI_WORDS:
        message = message.replace(old, new)
    return message


def _cycle(options: tuple[str, ...], current: str) -> list[str]:
    """The other options in cyclic order after ``current`` (the first valid one is taken)."""
    i = options.index(current)
    return [options[(i + k) % len(options)] for k in range(1, len(options))]


def figures(est: Estimate) -> dict[str, str]:
    """The headline numbers exactly as the app displays them."""
    worst = est.worst_stage
    return {
        "step time": fmt_seconds(est.step_time_s),
        "tokens/s": f"{est.tokens_per_s:,.0f}",
        "MFU": f"{est.mfu:.1%}",
        "peak memory": f"{worst.peak_bytes / GIB:.1f} GiB of {worst.capacity_bytes / GIB:.1f} GiB",
        "fits": "yes" if est.fits else f"NO (stage {worst.stage} over by {worst.overflow_bytes / GIB:.1f} GiB)",
    }


class ExploreApp(App):
    """Interactive what-if explorer over one scenario (analytic engine)."""

    CSS = "Static { padding: 0 1; } #error { color: red; }"
    OTHER_KEYS = [("s", "save the scenario (JSON)"), ("e", "export (Megatron args, else JSON)"),
                  ("?", "this help"), ("q", "quit")]
    BINDINGS = [Binding(k, f"knob('{k}')", d, show=False) for k, (d, _, _) in KNOBS.items()] + [
        Binding("s", "save", "save", show=False), Binding("e", "export", "export", show=False),
        Binding("question_mark", "help", "help", show=False), Binding("q", "quit", "quit", show=False)]

    def __init__(self, scenario: Scenario, save_path: str = "paraplan-explore.json",
                 export_path: str = "paraplan-explore-export.txt", framework: str | None = None):
        super().__init__()
        self.scenario = scenario
        self.framework = framework  # --framework: every key's layout must be one it launches
        self.estimate: Estimate = scenario.estimate()
        self.save_path, self.export_path = Path(save_path), Path(export_path)
        self.update_ms: float = 0.0
        self.error: str = ""
        self.message: str = ""

    def compose(self) -> ComposeResult:
        yield Header()
        for wid in ("knobs", "numbers", "time", "memory", "error", "status"):
            yield Static(id=wid)
        yield KeyFooter(pair_entries(KNOBS) + [("s", "save"), ("e", "export")], id="footer")

    def on_mount(self) -> None:
        self.title = "paraplan explore"
        self.refresh_view()

    # --- actions ------------------------------------------------------------------------
    def action_help(self) -> None:
        """Show every key (``?``)."""
        self.push_screen(HelpScreen(help_table(KNOBS, self.OTHER_KEYS)))

    def action_knob(self, key: str) -> None:
        """Apply knob ``key``; keep the old scenario and show the error when it is invalid."""
        _, field, value = KNOBS[key]
        choices = value(self.scenario) if callable(value) else [value]
        t0 = time.perf_counter()
        for text in choices:
            try:
                scenario, notes = apply_settings(self.scenario, [(field, str(text))])
                c.check_framework(scenario, self.framework)
                est = scenario.estimate()
            except SpecError as exc:
                self.error = f"{KNOBS[key][0]} refused: {tui_words(str(exc))}"
            except Exception as exc:  # noqa: BLE001 - the explorer keeps running on any error
                self.error = f"{KNOBS[key][0]} failed: {describe(exc, ['explore'])[0]}"
            else:
                self.scenario, self.estimate, self.error = scenario, est, ""
                self.message = "; ".join(notes)
                break
        self.refresh_view()
        self.update_ms = (time.perf_counter() - t0) * 1e3
        self.query_one("#status", Static).update(self._status())

    def _guarded(self, what: str, write) -> None:
        """Run ``write`` (a file write); on any failure show one error line and keep the app running
        (the error boundary of the explorer: nothing a key does may end the exploration)."""
        try:
            self.message, self.error = write(), ""
            if not self.estimate.fits:  # written as asked, but say it cannot run
                done = {"save": "saved", "export": "exported"}.get(what, what)
                self.error = (f"warning: {done} a layout that does not fit: "
                              f"{figures(self.estimate)['fits'].removeprefix('NO ')}")
        except Exception as exc:  # noqa: BLE001 - shown in the app, the scenario is kept
            message = describe(exc, ['explore'])[0].removeprefix('paraplan explore: ')
            self.error = f"{what} failed: {tui_words(message)}"
        self.query_one("#error", Static).update(self.error)
        self.query_one("#status", Static).update(self._status())

    def action_save(self) -> None:
        """Write the current scenario as JSON (atomically)."""
        def write() -> str:
            write_atomic(self.save_path, json.dumps(self.scenario.to_file_dict(), indent=2) + "\n")
            return f"saved {self.save_path}"

        self._guarded("save", write)

    def action_export(self) -> None:
        """Megatron-LM arguments via planner.exports when present, else the scenario JSON."""
        def write() -> str:
            try:
                from ..exports import export_text
            except ImportError:
                text, kind = json.dumps(self.scenario.to_file_dict(), indent=2) + "\n", "JSON"
            else:
                text, kind = export_text("megatron", self.scenario), "megatron arguments"
            write_atomic(self.export_path, text)
            return f"exported {kind} to {self.export_path}"

        self._guarded("export", write)

    # --- rendering ----------------------------------------------------------------------
    def _status(self) -> Text:
        t = Text(f"update {self.update_ms:.1f} ms", style="dim")
        if self.message:
            t.append(f"   {self.message}")
        return t

    def refresh_view(self) -> None:
        """Redraw every panel from ``self.scenario`` / ``self.estimate``."""
        s, est = self.scenario, self.estimate
        hw = s.hardware
        knobs = Text()
        knobs.append(f"{s.model.name} on {s.gpus} x {hw.name}\n", style="bold")
        knobs.append(f"tp {s.layout.tp}  pp {s.layout.pp}  dp {s.layout.dp} (derived)  micro-batch "
                     f"{s.training.micro_batch_size}  global batch {s.training.global_batch_size}  ZeRO "
                     f"{s.layout.zero_stage}  recompute {s.training.recompute}\n")
        knobs.append(f"NIC {hw.node.nic_bandwidth_gbps:g} GB/s/node  HBM {hw.device.hbm_capacity_gib:g} GiB  "
                     f"links {sum(k.bandwidth_gbps for k in hw.node.links):g} GB/s total")
        self.query_one("#knobs", Static).update(knobs)
        numbers = Text()
        for name, value in figures(est).items():
            numbers.append(f"{name}: ", style="bold")
            numbers.append(f"{value}   ", style="red" if name == "fits" and not est.fits else "")
        self.query_one("#numbers", Static).update(numbers)
        parts = est.time.model_dump()
        bar = Text("time   ")
        bar.append_text(stacked_bar(parts, TIME_COLORS, width=60))
        bar.append("\n       ")
        for key, color in TIME_COLORS.items():
            if parts[key] > 0:
                bar.append(f"■ {key} {parts[key] / est.step_time_s:.0%}  ", style=color)
        self.query_one("#time", Static).update(bar)
        mem = Text("memory ")
        worst = est.worst_stage
        frac = worst.peak_bytes / worst.capacity_bytes
        filled = min(60, round(frac * 60))
        mem.append("█" * filled, style="green" if est.fits else "red")
        mem.append("░" * (60 - filled), style="dim")
        mem.append(f" {frac:.0%} of HBM (worst stage {worst.stage})")
        self.query_one("#memory", Static).update(mem)
        self.query_one("#error", Static).update(self.error)


@cli_app.command()
@c.scenario_options()
def explore(
    base: Annotated[Optional[str], typer.Argument(help="Scenario JSON file (else --model/--hardware/...).")] = None,
    save: Annotated[str, typer.Option("--save-to", help="File the 's' key writes.")] = "paraplan-explore.json",
    export: Annotated[str, typer.Option("--export-to", help="File the 'e' key writes.")] = "paraplan-explore-export.txt",
    json_out: Annotated[bool, typer.Option("--json", help="Print the starting estimate as JSON; no app.")] = False,
    scenario_flags: dict | None = None,
) -> None:
    """Interactive explorer: change tp/pp/micro-batch/ZeRO/recompute/GPUs/NIC/links/HBM by keys."""
    from ..outputs import check_output
    from .whatif_cmd import scenario_from

    scenario = scenario_from(base, **scenario_flags)
    if json_out:
        print_json(scenario.estimate())
        return
    check_output(save, "--save-to")
    check_output(export, "--export-to")
    explorer = ExploreApp(scenario, save, export, scenario_flags.get("framework"))
    explorer.run()
    if explorer.return_code:  # the app ended on an exception: never exit 0 after a crash
        raise ExplorerCrashed(f"the explorer stopped on an error (exit code {explorer.return_code})")


class ExplorerCrashed(ParaplanError):
    """The Textual app ended on an unhandled exception (exit code 3)."""

    exit_code = 3
