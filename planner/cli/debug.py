"""Whether this invocation shows full tracebacks: ``paraplan --debug`` (the root callback in
planner/cli/app.py sets ``DEBUG``) or PARAPLAN_DEBUG set to anything but 0 / empty. The error boundary
(planner/cli/boundary.py) reads it and clears ``DEBUG`` before each invocation."""

from __future__ import annotations

import os

DEBUG = False


def debug_enabled() -> bool:
    """Whether tracebacks are wanted (``--debug`` or PARAPLAN_DEBUG set to anything but 0/empty)."""
    return DEBUG or os.environ.get("PARAPLAN_DEBUG", "") not in ("", "0")
