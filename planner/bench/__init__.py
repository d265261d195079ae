"""Benchmarks of paraplan itself.

- ``planner.bench.rows``: published measured runs (hwprofiles/data/published_runs.csv schema) mapped
  to scenarios, with the documented defaults for settings a row does not state.
- ``planner.bench.accuracy``: predicts every mapped row and compares on the row's own FLOPs
  convention (``paraplan bench accuracy``).
- ``planner.bench.speed``: how fast an estimate runs (``paraplan bench speed``).
"""
