"""Command-line entry point ``paraplan``: the only layer that renders (rich) or prints.

Each command group lives in its own module and registers itself on ``app`` when imported.
Exit codes: 0 ok, 1 nothing feasible, 2 bad input (one clear line, no traceback).
"""

from __future__ import annotations

import sys

from pydantic import ValidationError
from rich.text import Text


def _exception_classes(name: str) -> tuple[type, ...]:
    """``name`` from typer (which vendors click from 0.20 on) and from click where it is installed."""
    found: list[type] = []
    for module in ("click.exceptions", "typer._click.exceptions", "typer.exceptions", "typer"):
        try:
            cls = getattr(__import__(module, fromlist=[name]), name, None)
        except ImportError:  # pragma: no cover - depends on the installed typer
            cls = None
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


_ABORT = _exception_classes("Abort")
_EXIT = _exception_classes("Exit")
_CLICK_ERRORS = _exception_classes("ClickException")

from ..errors import ParaplanError, format_validation_error
from .app import app, err_console

# Command modules register on import (keep this list sorted; one line per module).
from . import bench_cmd  # noqa: E402,F401
from . import bench_speed_cmd  # noqa: E402,F401
from . import estimate_cmd  # noqa: E402,F401
from . import explore_app  # noqa: E402,F401
from . import hw_cmd  # noqa: E402,F401
from . import model_cmd  # noqa: E402,F401
from . import plan_cmd  # noqa: E402,F401
from . import report_cmd  # noqa: E402,F401
from . import simulate_cmd  # noqa: E402,F401
from . import validate_cmd  # noqa: E402,F401
from . import calibrate_cmd  # noqa: E402,F401
from . import whatif_cmd  # noqa: E402,F401


def _print_error(message: str) -> None:
    """One line on stderr; the message is plain text (no rich markup interpretation)."""
    err_console.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn paraplan errors into one line on stderr and exit code 1 or 2."""
    try:
        rc = app(args=argv, standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except ParaplanError as exc:
        _print_error(str(exc))
        sys.exit(exc.exit_code)
    except ValidationError as exc:
        _print_error(format_validation_error(exc))
        sys.exit(2)
    except _ABORT:
        err_console.print("aborted")
        sys.exit(130)
    except _EXIT as exc:
        sys.exit(exc.exit_code)
    except _CLICK_ERRORS as exc:
        exc.show()
        sys.exit(2)
    return 0


__all__ = ["app", "main"]
