"""Errors the CLI turns into one clear line and an exit code (2 = bad input, 1 = nothing feasible)."""

from __future__ import annotations


class ParaplanError(Exception):
    """Base class of every error paraplan raises on purpose."""

    exit_code = 2


class SpecError(ParaplanError, ValueError):
    """Bad user input: names the field (and file) and what is allowed.

    Attributes:
        field: dotted name of the offending field (``layout.tp``) or ``None``.
        source: file path or name the value came from, if any.
    """

    def __init__(self, message: str, *, field: str | None = None, source: str | None = None):
        self.field = field
        self.source = source
        prefix = ""
        if source:
            prefix += f"{source}: "
        if field:
            prefix += f"{field}: "
        super().__init__(prefix + message)


class NotFoundError(SpecError):
    """An unknown model, profile or other name; the message suggests the closest matches."""


class ParaplanWarning(UserWarning):
    """Something the user should know that does not stop the command (the CLI prints it as one
    ``warning:`` line on stderr; the library itself never prints)."""


class InfeasibleError(ParaplanError):
    """Nothing feasible: no layout fits (exit code 1)."""

    exit_code = 1

    def __init__(self, message: str, *, details: dict | None = None):
        self.details = details or {}
        super().__init__(message)


def suggest(name: str, choices: list[str], n: int = 3) -> str:
    """Return ``"did you mean: a, b?"`` for the closest of ``choices`` to ``name`` (or all choices)."""
    import difflib

    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.4)
    if close:
        return "did you mean: " + ", ".join(close) + "?"
    return "allowed: " + ", ".join(sorted(choices))


def format_validation_error(exc, source: str | None = None) -> str:
    """One line from a pydantic ``ValidationError``: unknown keys first (a misspelt key is usually
    the cause of the "missing" errors that follow), then the other failing fields and why."""
    errs = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
    missing = {str(e["loc"][-1]) for e in errs if e.get("type") == "missing" and e.get("loc")}
    parts = []
    for e in errs[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "__root__")
        if e.get("type") == "extra_forbidden":
            name = str(e["loc"][-1]) if e.get("loc") else loc
            hint = suggest(name, sorted(missing), n=1) if missing else ""
            msg = "unknown key" + (f" ({hint})" if hint.startswith("did you mean") else "")
        else:
            msg = e.get("msg", "invalid").removeprefix("Value error, ")  # pydantic's prefix for ValueError
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = f" (+{len(errs) - 3} more)" if len(errs) > 3 else ""
    prefix = f"{source}: " if source else ""
    return prefix + "; ".join(parts) + more
