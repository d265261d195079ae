"""Reports that regenerate a case study from paraplan's own models (issue 8: the Frontier study)."""

from .frontier import build_report
from .frontier_md import frontier_report, render_markdown

__all__ = ["build_report", "frontier_report", "render_markdown"]
