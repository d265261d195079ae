"""``paraplan bench``: benchmarks of paraplan itself (accuracy against published runs, speed)."""

from __future__ import annotations

import typer

from .app import app

bench_app = typer.Typer(help="Benchmarks of paraplan itself: accuracy and speed.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
