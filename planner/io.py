"""File input/output shared by every package: atomic writes and JSON reads with one clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import SpecError


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename
    (:func:`planner.outputs.atomic_output`), so readers never see half a file; the file gets ordinary
    permissions (0666 minus the umask)."""
    from .outputs import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


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
