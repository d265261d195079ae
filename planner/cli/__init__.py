"""Command-line entry point ``paraplan``: the only layer that renders (rich) or prints.

Each command group lives in its own module and registers itself on ``app`` when imported.
Exit codes: 0 ok, 1 nothing feasible, 2 bad input (one clear line, no traceback).
"""

from __future__ import annotations

import sys

import click
from pydantic import ValidationError

from ..errors import ParaplanError, format_validation_error
from .app import app, err_console

# Command modules register on import (keep this list sorted; one line per module).
from . import estimate_cmd  # noqa: E402,F401
from . import hw_cmd  # noqa: E402,F401
from . import model_cmd  # noqa: E402,F401


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn paraplan errors into one line on stderr and exit code 1 or 2."""
    try:
        rc = app(args=argv, standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except ParaplanError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except ValidationError as exc:
        err_console.print(f"[bold red]error:[/] {format_validation_error(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    return 0


__all__ = ["app", "main"]
