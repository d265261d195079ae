"""Shared pytest fixtures."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

os.environ.setdefault("COLUMNS", "160")


@dataclass
class CliResult:
    """Outcome of one in-process CLI run."""

    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys):
    """Run ``paraplan ARGS`` in-process through ``planner.cli.main``; returns a CliResult."""
    from planner.cli import main

    def _run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return _run
