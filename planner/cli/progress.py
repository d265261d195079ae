"""Progress of long jobs on stderr: a rich bar with the time left on a terminal; when stderr is piped,
plain lines (one per finished job, or at most one every few seconds for many small units), so logs
stay readable. ``--json`` runs show none (their stderr is for warnings and errors).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from .app import err_console

#: Piped progress of many small units: at most one line per this many seconds.
PIPED_EVERY_S = 5.0


class JobProgress:
    """What a long command reports: ``done(n, what)`` when ``n`` units have finished (``what``: the
    last one), ``working(what)`` for the unit under way (shown on a terminal only)."""

    def __init__(self, label: str, total: int | None, *, every_unit: bool, bar: Progress | None):
        self.label, self.total, self.every_unit, self.bar = label, total, every_unit, bar
        self.start = self.last = time.monotonic()
        self.task = bar.add_task("", total=total) if bar is not None else None

    def done(self, n: int, what: str = "", total: int | None = None) -> None:
        """``n`` units finished (of ``total`` when it changed)."""
        self.total = total if total is not None else self.total
        if self.bar is not None:
            self.bar.update(self.task, completed=n, total=self.total, description=what)
            return
        now = time.monotonic()
        if not self.every_unit and now - self.last < PIPED_EVERY_S:
            return
        self.last = now
        elapsed = now - self.start
        of = f"/{self.total}" if self.total else ""
        left = (f", about {elapsed / n * (self.total - n):.0f} s left" if self.total and 0 < n < self.total
                else "")
        err_console.print(Text(f"{self.label}: {n}{of} done{' (' + what + ')' if what else ''} after "
                               f"{elapsed:.0f} s{left}", style="dim"), highlight=False, soft_wrap=True)

    def working(self, what: str) -> None:
        """The unit under way (a terminal's bar shows it; piped output does not)."""
        if self.bar is not None:
            self.bar.update(self.task, description=what)


class _Silent(JobProgress):
    def __init__(self):
        super().__init__("", None, every_unit=False, bar=None)

    def done(self, n: int, what: str = "", total: int | None = None) -> None:
        return

    def working(self, what: str) -> None:
        return


@contextlib.contextmanager
def job_progress(label: str, total: int | None, *, enabled: bool = True,
                 every_unit: bool = False) -> Iterator[JobProgress]:
    """A JobProgress for ``total`` units. ``every_unit``: piped output gets one line per finished unit
    (jobs of seconds each); otherwise at most one line per PIPED_EVERY_S. ``enabled=False``: silent."""
    if not enabled:
        yield _Silent()
        return
    if not err_console.is_terminal:
        yield JobProgress(label, total, every_unit=every_unit, bar=None)
        return
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                  TextColumn("{task.description}"), console=err_console, transient=True) as bar:
        yield JobProgress(label, total, every_unit=every_unit, bar=bar)
