"""The typer application and what every command shares: console, JSON output, atomic writes.

Commands are loaded lazily (planner/cli/lazy.py): this module imports only typer and rich, so
``paraplan --help`` starts at once.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from ..io import write_atomic  # noqa: F401 - re-exported for the commands
from . import debug as debug_state
from .lazy import LazyGroup


class _AppCommands(LazyGroup):
    """The lazy command group of :data:`app` (the command modules register on it when imported)."""

    def typer_app(self) -> typer.Typer:
        return app


app = typer.Typer(
    name="paraplan",
    cls=_AppCommands,
    help="Plan, estimate and simulate distributed training of transformer models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output gets a wide page (rich falls back to 80 columns); a terminal keeps its own width.
_PIPE_WIDTH = None if (sys.stdout.isatty() or "COLUMNS" in os.environ) else 140
console = Console(width=_PIPE_WIDTH)
err_console = Console(stderr=True, width=None if (sys.stderr.isatty() or "COLUMNS" in os.environ) else 200)

JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON instead of tables.")


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an unexpected error "
                                        "(also PARAPLAN_DEBUG=1).")] = False,
) -> None:
    """Plan, estimate and simulate distributed training of transformer models."""
    if debug:
        debug_state.DEBUG = True


def to_jsonable(obj: Any) -> Any:
    """Pydantic models, dicts and lists to plain JSON values."""
    from pydantic import BaseModel

    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    """Write ``obj`` as indented JSON on stdout (no rich markup)."""
    typer.echo(json.dumps(to_jsonable(obj), indent=2))
