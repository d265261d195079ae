"""Analytic cost model: step time, throughput, MFU/HFU and per-stage memory of one layout."""

from .analytic import StageTimes, estimate, fold, price_stage, stage_memory
from .result import Estimate, MemoryBreakdown, StageMemory, TimeBreakdown

__all__ = ["Estimate", "MemoryBreakdown", "StageMemory", "StageTimes", "TimeBreakdown", "estimate",
           "fold", "price_stage", "stage_memory"]
