"""Output paths, checked before any work starts and written atomically.

Every command that writes a file (``--out``, ``--png``, ``--trace``, ``--csv``, ``--save``, ``report
--out``, ``calibrate --out``, the explorer's ``--save-to`` / ``--export-to``) calls
:func:`check_output` on each path first, so a path it cannot write is one line and exit code 2
before minutes of work, and writes through :func:`planner.io.write_atomic` or :func:`atomic_output`,
so a failure leaves nothing behind (no half file, no temporary file).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import ParaplanError, SpecError

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
            raise SpecError(f"'{text}' is a file, expected a folder", field=option)
    elif p.is_dir():
        raise SpecError(f"'{text}' is a folder, expected a file name", field=option)
    existing = _nearest_existing(p if folder else p.parent)
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


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix, so writers pick the same format); on
    success it is renamed onto ``path``, on any failure it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp, target)
    except OSError as exc:  # name the file the caller asked for, not the temporary one
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
