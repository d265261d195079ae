"""How well an estimate is backed by measured runs: the layout class of a prediction
(:mod:`planner.evidence.classify`) and the shipped table of measured runs per class
(:mod:`planner.evidence.table`, built by ``paraplan bench evidence --write``)."""

from .classify import LayoutClass, classify, hardware_family, scale_band
from .table import Evidence, EvidenceTable, evidence_for, evidence_for_class, load_table

__all__ = ["Evidence", "EvidenceTable", "LayoutClass", "classify", "evidence_for", "evidence_for_class",
           "hardware_family", "load_table", "scale_band"]
