"""File input/output shared by every package: atomic writes and JSON reads with one clear error."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import SpecError


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename, so readers
    never see half a file; the file gets ordinary permissions (0666 minus the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp, path)
    except OSError as exc:  # name the file the caller asked for, not the temporary one
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: str | Path, what: str = "file") -> Any:
    """Parse a JSON file; SpecError naming the file (and line) when it is unreadable or malformed."""
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except OSError as exc:
        raise SpecError(f"cannot read {what}: {exc.strerror}", source=str(p)) from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"malformed JSON (line {exc.lineno}): {exc.msg}", source=str(p)) from None
    except UnicodeDecodeError:
        raise SpecError(f"not a text file (expected UTF-8 JSON {what})", source=str(p)) from None
    except RecursionError:
        raise SpecError("JSON nested too deeply", source=str(p)) from None
