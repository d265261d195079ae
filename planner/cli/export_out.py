"""Where ``plan --export`` output goes: verbatim to stdout (no rich wrapping or markup, so it pipes
into ``jq`` or ``> args.sh``), or ``--out`` (a file for json, a folder with launch.sh otherwise)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import SpecError
from ..exports import export_files
from ..io import write_atomic


def plain_stdout(text: str) -> None:
    """Write ``text`` unchanged to stdout."""
    sys.stdout.write(text)
    sys.stdout.flush()


def write_export(fmt: str, scenario, out: str) -> list[str]:
    """Write the export; json -> the file ``out``; a framework -> files in folder ``out``.
    Every file is rendered first (a refusal writes nothing), then each is written atomically."""
    files = export_files(fmt, scenario)
    if fmt == "json":
        write_atomic(out, files["plan.json"])
        return [out]
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise SpecError(f"{out} exists and is not a folder (--export {fmt} writes a folder)", field="--out")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        path = folder / name
        write_atomic(str(path), text)
        if name.endswith(".sh"):
            os.chmod(path, 0o755)
        paths.append(str(path))
    return paths
