"""Progress of long jobs on stderr: a rich bar with the time left on a terminal; when stderr is piped,
plain lines (one per finished job, or at most one every few seconds for many small units), so logs
stay readable. ``--json`` runs show none (their stderr is for warnings and errors).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

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

Update = Callable[..., None]


def _estimate(done: int, total: int | None, elapsed: float) -> str:
    if not total or not done or done >= total:
        return ""
    return f", about {elapsed / done * (total - done):.0f} s left"


@contextlib.contextmanager
def job_progress(label: str, total: int | None, *, enabled: bool = True,
                 every_unit: bool = False) -> Iterator[Update]:
    """Yield ``update(done, total=None, what="")``: ``done`` units of ``total`` finished, ``what`` the
    unit just finished (a layout, a sample). ``every_unit``: piped output gets one line per unit (jobs
    of seconds each); otherwise at most one line per PIPED_EVERY_S."""
    if not enabled:
        yield lambda done, total=None, what="": None
        return
    start = time.monotonic()
    if err_console.is_terminal:
        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), TextColumn("{task.description}"),
                      console=err_console, transient=True) as bar:
            task = bar.add_task("", total=total)

            def update_bar(done: int, total_now: int | None = None, what: str = "") -> None:
                bar.update(task, completed=done, total=total_now if total_now is not None else total,
                           description=what)

            yield update_bar
        return
    last = [start]

    def update_lines(done: int, total_now: int | None = None, what: str = "") -> None:
        now = time.monotonic()
        n = total_now if total_now is not None else total
        if not every_unit and (now - last[0] < PIPED_EVERY_S or (n is not None and done >= n)):
            return
        last[0] = now
        of = f"/{n}" if n else ""
        err_console.print(Text(f"{label}: {done}{of} done{' (' + what + ')' if what else ''} after "
                               f"{now - start:.0f} s{_estimate(done, n, now - start)}", style="dim"),
                          highlight=False, soft_wrap=True)

    yield update_lines
