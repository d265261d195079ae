"""The explorer's keys: a footer that fits the terminal width and a ``?`` help screen.

Textual's Footer lists one binding after another and cuts the line at the screen edge, so at 80
or 140 columns ``q quit`` fell off, and the upper-case halves of the knobs were never shown.
Here each knob is one entry (``t/T tp``), ``? help`` and ``q quit`` come first so they are never
cut, and entries that do not fit are replaced by ``? for all keys``.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# footer entries in order of importance after "? help" and "q quit": (keys shown, what they do)
FIXED = (("?", "help"), ("q", "quit"))
MORE = "? for all keys"


def pair_entries(knobs: dict[str, tuple[str, str, object]]) -> list[tuple[str, str]]:
    """One footer entry per knob: ``("t/T", "tp")`` for an up/down pair, ``("z", "ZeRO")`` alone."""
    out = []
    for key, (desc, _field, _value) in knobs.items():
        if not key.islower():
            continue
        upper = key.upper()
        if upper in knobs:
            out.append((f"{key}/{upper}", _subject(desc)))
        else:
            out.append((key, _subject(desc)))
    return out


def _subject(desc: str) -> str:
    """"tp up" -> "tp", "NIC bw up" -> "NIC bw", "GPUs x2" -> "GPUs", "ZeRO next" -> "ZeRO"."""
    words = desc.split()
    while len(words) > 1 and words[-1] in ("up", "down", "next", "x2", "÷2"):
        words.pop()
    return " ".join(words)


def _entry(keys: str, what: str) -> Text:
    t = Text()
    t.append(f" {keys} ", style="bold reverse")
    t.append(f" {what}")
    return t


def footer_text(entries: list[tuple[str, str]], width: int, gap: int = 2) -> Text:
    """The footer line for ``width`` columns: ``? help`` and ``q quit`` first, then as many of
    ``entries`` as fit (in order); when some are left out, ``? for all keys`` at the end."""
    fixed = [_entry(k, w) for k, w in FIXED]
    rest = [_entry(k, w) for k, w in entries]
    line = Text()
    for i, t in enumerate(fixed):
        if i:
            line.append(" " * gap)
        line.append_text(t)
    more = Text(" " * gap + MORE, style="dim")
    for i, t in enumerate(rest):
        last = i == len(rest) - 1
        after = line.cell_len + gap + t.cell_len  # width with this entry
        if after + (0 if last else more.cell_len) > width:
            if line.cell_len + more.cell_len <= width:
                line.append_text(more)
            break
        line.append(" " * gap)
        line.append_text(t)
    return line


class KeyFooter(Static):
    """One line of key hints, refitted to its width on every resize."""

    DEFAULT_CSS = "KeyFooter { dock: bottom; height: 1; background: $panel; padding: 0 0; }"

    def __init__(self, entries: list[tuple[str, str]], **kwargs):
        super().__init__(**kwargs)
        self.entries = entries

    def on_resize(self) -> None:
        self.update(footer_text(self.entries, self.size.width))

    def on_mount(self) -> None:
        self.update(footer_text(self.entries, self.size.width or self.app.size.width))


def help_table(knobs: dict[str, tuple[str, str, object]], extra: list[tuple[str, str]]) -> Table:
    """Every key of the explorer with what it does; an up/down pair shares a row
    (``t / T``  ``tp up / down``  ``layout.tp x2 / x0.5``) so the list fits 24 lines."""
    table = Table(title="paraplan explore — keys", caption="?, Esc or q closes this screen", show_edge=False,
                  expand=False)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("does")
    table.add_column("changes", style="dim")
    for key, (desc, field, value) in knobs.items():
        if not key.islower():
            continue
        how = "cycles" if callable(value) else str(value)
        upper = knobs.get(key.upper())
        if upper is None:
            table.add_row(key, desc, f"{field} {how}")
            continue
        down_desc, _field, down_value = upper
        subject = _subject(desc)
        words = (desc.removeprefix(subject).strip() or desc, down_desc.removeprefix(subject).strip() or down_desc)
        table.add_row(f"{key} / {key.upper()}", f"{subject} {words[0]} / {words[1]}",
                      f"{field} {how} / {down_value}")
    for key, desc in extra:
        table.add_row(key, desc, "")
    return table


class HelpScreen(ModalScreen):
    """The ``?`` screen: every key; ``?``, ``escape`` or ``q`` closes it."""

    DEFAULT_CSS = "HelpScreen { align: center middle; } #help > Static { width: 100%; } " \
                  "#help { width: auto; max-width: 100%; " \
                  "height: auto; max-height: 100%; border: round $accent; background: $surface; padding: 0 1; }"
    BINDINGS = [Binding("escape", "close", "close"), Binding("question_mark", "close", "close"),
                Binding("q", "close", "close")]

    def __init__(self, table: Table):
        super().__init__()
        self.table = table

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(self.table)

    def on_mount(self) -> None:
        """Size the box to the table (Textual's ``width: auto`` does not measure a rich Table)."""
        from rich.measure import Measurement

        console = self.app.console
        width = Measurement.get(console, console.options.update_width(400), self.table).maximum
        self.query_one("#help").styles.width = width + 6  # border, padding and the scroll bar

    def action_close(self) -> None:
        self.dismiss()


__all__ = ["HelpScreen", "KeyFooter", "footer_text", "help_table", "pair_entries"]
