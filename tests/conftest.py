"""Shared pytest fixtures."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

import hwprofiles  # noqa: F401 - installs the recipe loader a TrainingSpec resolves its recipe through

os.environ.setdefault("COLUMNS", "160")

# Tests never depend on wall time: hypothesis's default 200 ms deadline per example fails a test on a
# loaded machine, not on a wrong result, so no property test has one (each may still set its own settings).
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile("paraplan", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("paraplan")
except ImportError:  # pragma: no cover - hypothesis is in the dev extra
    pass


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
