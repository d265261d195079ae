"""Layout search: enumerate layouts, prune by memory, price with planner.cost, rank, explain.

Public API: ``search(model, hardware, gpus, training, constraints, top=10, progress=None,
reference=None) -> SearchResult`` (raises InfeasibleError when nothing fits),
``SearchConstraints``, ``refine(result, k, model, hardware)`` (re-rank by the simulator).
"""

from .engine import check_memory, gpu_hours_per_mtok, search
from .resimulate import refine, simulator_available
from .result import Plan, SearchResult, SearchStats
from .space import OBJECTIVES, SearchConstraints, stage_split, tp_degrees

__all__ = ["OBJECTIVES", "Plan", "SearchConstraints", "SearchResult", "SearchStats", "check_memory",
           "gpu_hours_per_mtok", "refine", "search", "simulator_available", "stage_split", "tp_degrees"]
