"""Output paths, checked before any work starts and written atomically.

Every command that writes a file (``--out``, ``--png``, ``--trace``, ``--csv``, ``--save``, ``report
--out``, ``calibrate --out``, the explorer's ``--save-to`` / ``--export-to``) calls
:func:`check_output` on each path first, so a path it cannot write is one line and exit code 2
before minutes of work, and writes through :func:`planner.io.write_atomic` or :func:`atomic_output`,
so a failure leaves nothing behind (no half file, no temporary file). The rules for symbolic links,
FIFOs, devices, folders and read-only files are planner.io's (:func:`planner.io.output_target`);
they are checked here first, so a refusal comes before the work.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ParaplanError, SpecError
from .io import atomic_output, output_target

__all__ = ["PLOT_SUFFIXES", "MissingExtraError", "atomic_output", "check_output", "require_plotting"]

#: Suffixes matplotlib writes without extra backends (the format follows the suffix).
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


class MissingExtraError(ParaplanError):
    """An optional dependency (an extra of the paraplan package) is not installed (exit code 2)."""


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _probe_folder(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder`` (None when it can): creates and removes a probe file,
    because permission bits say nothing for root or on /proc-like file systems."""
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".paraplan-probe-", dir=folder)
    except OSError as exc:
        return f"cannot create files in {folder}: {exc.strerror or exc}"
    os.close(fd)
    os.unlink(probe)
    return None


def check_output(path: str | os.PathLike | None, option: str, *, suffixes: tuple[str, ...] | None = None,
                 folder: bool = False) -> Path | None:
    """Raise SpecError (exit 2) naming ``option`` unless ``path`` can be written; None passes through.

    Args:
        path: the file (or, with ``folder=True``, the folder) the command will write.
        option: the option as the user typed it, e.g. ``--png``.
        suffixes: allowed file suffixes (lower case, with the dot), or None for any.
        folder: ``path`` is a folder the command fills (it may exist; it must not be a file).
    """
    if path is None:
        return None
    text = os.fspath(path)
    if not text.strip():
        raise SpecError("an empty path", field=option)
    p = Path(text).expanduser()
    if suffixes and p.suffix.lower() not in suffixes:
        raise SpecError(f"'{text}' must end in {' or '.join(suffixes)}", field=option)
    if folder:
        if p.exists() and not p.is_dir():
            raise SpecError(f"'{text}' exists and is not a folder", field=option)
        existing = _nearest_existing(p)
    else:
        if p.is_dir():
            raise SpecError(f"'{text}' is a folder, expected a file name", field=option)
        try:
            target = output_target(p)
        except SpecError as exc:
            raise SpecError(str(exc), field=option) from None
        if target.kind == "stream":
            return p
        existing = _nearest_existing(target.path.parent)
    why = _probe_folder(existing)
    if why is not None:
        raise SpecError(f"cannot write '{text}': {why}", field=option)
    return p


def require_plotting(option: str) -> None:
    """MissingExtraError unless matplotlib imports (call before any work for --png and reports)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingExtraError(f"{option} needs paraplan[plot]: pip install 'paraplan[plot]'") from None
