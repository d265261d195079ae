"""File input/output shared by every package: atomic writes that never replace what is not a regular
file, bounded reads of input files (or standard input), and JSON reads with one clear error.

Outputs (every output option writes through :func:`atomic_output` or :func:`write_atomic`;
planner.outputs.check_output applies :func:`output_target` to each path before any work):

- a regular file or a new name: written to a temporary file in the same folder, then renamed onto
  it, so readers never see half a file (an existing file keeps its permission bits);
- a symbolic link: resolved; its final target is written that way and the link stays a link;
- a FIFO or a character device (``/dev/null``, ``>(jq .)``): written through, never replaced; a FIFO
  that no process reads within :data:`FIFO_WAIT_S` is refused;
- a folder, a socket, a block device, a symlink loop, a read-only file, or a file under ``/dev``
  (other than a character device): refused with one line (SpecError, exit code 2).

Inputs (:func:`read_input_text`): ``-`` reads standard input; anything else must be a regular file
(a FIFO, a device or a folder is refused before reading) no larger than the limit of its kind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import SpecError

#: Seconds a write to a FIFO waits for a reader before it is refused.
FIFO_WAIT_S = 10.0
MIB = 2**20
#: Largest input file of each kind, bytes: a config.json or a zoo YAML is kilobytes, a profile or a
#: scenario (which embeds a profile) tens of kilobytes; results and data files can be megabytes.
INPUT_LIMITS = {"model": 1 * MIB, "config.json": 1 * MIB, "hardware": 4 * MIB, "calibration": 4 * MIB,
                "scenario": 8 * MIB, "results": 64 * MIB, "steps file": 64 * MIB, "CSV": 64 * MIB,
                "file": 16 * MIB}
STDIN = "-"


@dataclass(frozen=True)
class OutputTarget:
    """Where a write to a path lands: ``file`` = an atomic rename onto ``path`` (symlinks resolved),
    ``stream`` = written through (a FIFO or a character device)."""

    kind: Literal["file", "stream"]
    path: Path


def _kind_word(mode: int) -> str:
    for test, word in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return word
    return "not a regular file"


def output_target(path: str | os.PathLike) -> OutputTarget:
    """The :class:`OutputTarget` of ``path`` under the rules of the module docstring; SpecError naming
    the path when it must not be written."""
    given = Path(os.fspath(path)).expanduser()
    try:
        st = os.stat(given)  # follows symbolic links
    except FileNotFoundError:
        st = None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SpecError(f"'{given}' is a symbolic link loop") from None
        if exc.errno == errno.ENOTDIR:
            raise SpecError(f"cannot write '{given}': a part of the path is a file, not a folder") from None
        raise SpecError(f"cannot write '{given}': {exc.strerror or exc}") from None
    if st is not None and (stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode)):
        if not os.access(given, os.W_OK):
            raise SpecError(f"cannot write '{given}': {_kind_word(st.st_mode)} without write permission")
        return OutputTarget("stream", given)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise SpecError(f"'{given}' is {_kind_word(st.st_mode)}, not a file; give a file name")
    real = Path(os.path.realpath(given))
    if real.parts[:2] == ("/", "dev"):
        raise SpecError(f"'{given}' is under /dev; paraplan writes only character devices there, never files")
    if st is not None and not st.st_mode & 0o222:
        raise SpecError(f"'{given}' is read-only; make it writable (chmod u+w) or give another name")
    return OutputTarget("file", real)


def _open_stream(path: Path) -> int:
    """A write descriptor on a FIFO or device; a FIFO waits up to FIFO_WAIT_S for a reader."""
    deadline = time.monotonic() + FIFO_WAIT_S
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: a FIFO nobody has open for reading (yet)
                raise SpecError(f"cannot write '{path}': {exc.strerror or exc}") from None
            if time.monotonic() > deadline:
                raise SpecError(f"'{path}' is a FIFO that no process read within {FIFO_WAIT_S:g} s; start its "
                                "reader first") from None
            time.sleep(0.05)
            continue
        os.set_blocking(fd, True)
        return fd


def _write_through(path: Path, data: bytes) -> None:
    fd = _open_stream(path)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BrokenPipeError:
        raise SpecError(f"'{path}': its reader went away before everything was written") from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write (same suffix, so writers such as matplotlib pick the same
    format); on success its content lands at ``path`` by the rules of the module docstring, on any
    failure it is removed and ``path`` is untouched."""
    target = output_target(path)
    suffix = Path(os.fspath(path)).suffix
    if target.kind == "stream":
        folder = tempfile.mkdtemp(prefix=".paraplan-out-")
        tmp = Path(folder) / f"out{suffix}"
        try:
            yield tmp
            _write_through(target.path, tmp.read_bytes())
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    real = target.path
    real.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{real.stem}.", suffix=suffix, dir=real.parent)
    os.close(fd)
    try:
        yield Path(name)
        try:
            mode = stat.S_IMODE(os.stat(real).st_mode)
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(name, mode)  # mkstemp creates 0600
        os.replace(name, real)
    except OSError as exc:  # name the file the caller asked for, not the temporary one
        Path(name).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through :func:`atomic_output`; returns ``path``."""
    with atomic_output(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
    return Path(path)


#: Standard input as read once: (the stream object, its text); a new stream (a test) is read anew.
_stdin_read: tuple[object, str] | None = None


def read_input_text(path: str | os.PathLike, what: str = "file", *, limit: int | None = None) -> str:
    """The text of an input file, or of standard input for ``-`` (read once, then the same text).

    SpecError naming the file, before anything is read, when it is missing, not a regular file
    (folder, FIFO, device) or larger than ``limit`` bytes (default: INPUT_LIMITS[what]); and when it
    is not UTF-8 text.
    """
    global _stdin_read
    limit = INPUT_LIMITS.get(what, INPUT_LIMITS["file"]) if limit is None else limit
    text = os.fspath(path)
    if text == STDIN:
        if _stdin_read is None or _stdin_read[0] is not sys.stdin:
            raw = sys.stdin.buffer.read(limit + 1) if hasattr(sys.stdin, "buffer") else sys.stdin.read(limit + 1)
            if len(raw) > limit:
                raise SpecError(f"standard input holds more than {limit // MIB} MiB; a {what} is smaller",
                                source="-")
            try:
                _stdin_read = (sys.stdin, raw.decode() if isinstance(raw, bytes) else raw)
            except UnicodeDecodeError:
                raise SpecError(f"not a text file (expected UTF-8 {what})", source="-") from None
        return _stdin_read[1]
    try:
        st = os.stat(text)
    except FileNotFoundError:
        raise SpecError("no such file", source=text) from None
    except OSError as exc:
        raise SpecError(f"cannot read {what}: {exc.strerror or exc}", source=text) from None
    if not stat.S_ISREG(st.st_mode):
        hint = " (give - to read standard input)" if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) else ""
        noun = what if what.endswith("file") else f"{what} file"
        raise SpecError(f"{_kind_word(st.st_mode)}, expected a {noun}{hint}", source=text)
    if st.st_size > limit:
        raise SpecError(f"{st.st_size / MIB:,.1f} MiB is larger than a {what} can be ({limit // MIB} MiB)",
                        source=text)
    try:
        with open(text, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise SpecError(f"cannot read {what}: {exc.strerror or exc}", source=text) from None
    if len(raw) > limit:  # grew while we looked
        raise SpecError(f"larger than a {what} can be ({limit // MIB} MiB)", source=text)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise SpecError(f"not a text file (expected UTF-8 {what})", source=text) from None


def parse_json_text(text: str, source: str, what: str = "file") -> Any:
    """Parse JSON text; SpecError naming ``source`` (and the line) when it is malformed."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"malformed JSON (line {exc.lineno}): {exc.msg}", source=source) from None
    except RecursionError:
        raise SpecError("JSON nested too deeply", source=source) from None


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Parse a JSON input file (``-`` = standard input) through :func:`read_input_text`; SpecError
    naming the file (and line) when it is unreadable, too large or malformed."""
    return parse_json_text(read_input_text(path, what), os.fspath(path), what)
