"""Fixtures of the validate test group."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def validate_run():
    """``run(out, *args)``: ``paraplan validate run *args --out OUT --json`` in-process, asserting it exits
    0 (the results file, or its absence, is the failure message); returns ``out``."""

    def run(out: Path, *args: str) -> Path:
        from planner.cli import main

        try:
            main(["validate", "run", *args, "--out", str(out), "--json"])
            code = 0
        except SystemExit as exc:
            code = exc.code
        assert code == 0, out.read_text() if out.exists() else "no results written"
        return out

    return run
