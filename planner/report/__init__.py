"""Reports that regenerate a case study from paraplan's own models (issue 8: the Frontier study)."""

from .frontier import build_report
# from .frontier_md import render_markdown, write_frontier_report

__all__ = ["build_report", ]
