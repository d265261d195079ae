"""Shared pytest fixtures."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("COLUMNS", "160")


@pytest.fixture
def run_cli():
    """Run the paraplan CLI in-process; returns (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from planner.cli import app

    def _run(*args: str):
        runner = CliRunner()
        result = runner.invoke(app, list(args), catch_exceptions=True)
        return result

    return _run
