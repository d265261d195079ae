"""Command-line entry point ``paraplan``: the only layer that renders (rich) or prints.

Commands are imported lazily (planner/cli/lazy.py); every one runs behind the error boundary of
planner/cli/boundary.py. Exit codes: 0 ok, 1 nothing feasible, 2 bad input (one clear line, no
traceback), 3 internal error, 130 interrupted.
"""

from __future__ import annotations

from .app import app
from .boundary import main

__all__ = ["app", "main"]
