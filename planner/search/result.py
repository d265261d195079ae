"""Result models of a layout search: ranked plans, rejection counts, the explanation."""

from __future__ import annotations

from pydantic import Field

from ..cost.result import Estimate, Result
from ..specs import Layout, TrainingSpec

GPU_HOURS_PER_MTOK = "GPU-hours per million tokens"


class Plan(Result):
    """One priced layout."""

    rank: int = Field(description="1 = best under the objective")
    gpus: int = Field(description="ranks the plan uses")
    layout: Layout = Field(description="parallel layout")
    training: TrainingSpec = Field(description="training recipe with the chosen micro-batch and recompute")
    estimate: Estimate = Field(description="analytic estimate (planner.cost) of this plan")
    usable_memory_bytes: float = Field(description="HBM capacity minus the requested headroom, bytes per GPU")
    gpu_hours_per_mtok: float = Field(description="cost: gpus * step time / 3600 per million tokens")
    engine: str = Field("analytic", description="analytic, or simulate after --refine")

    @property
    def label(self) -> str:
        """``tp8 pp16 dp24 zero1 sp  1f1b  mb1 full``."""
        lay = self.layout
        label = (f"{lay.describe()} {lay.schedule} mb{self.training.micro_batch_size} "
                 f"{self.training.recompute}")
        trn = self.training
        tags = [trn.offload.describe(), f"tp-overlap {trn.tp_overlap_style}" if trn.tp_comm_overlap and lay.tp > 1 else ""]
        return " ".join([label, *filter(None, tags)])


class SearchStats(Result):
    """How much of the space the search looked at, and how fast."""

    structures: int = Field(description="layout structures enumerated (without micro-batch / recompute)")
    memory_checked: int = Field(description="candidates whose memory was checked (build_step + stage_memory)")
    priced: int = Field(description="candidates priced by planner.cost.estimate")
    bounded: int = Field(0, description="feasible candidates not priced: a lower bound on their step time "
                                        "shows they cannot rank in the result (planner.search.bounded)")
    rejected: dict[str, int] = Field(description="candidates cut, by reason: memory, invalid, constraint, "
                                                 "dominated (a lighter recompute of the same layout fits)")
    elapsed_s: float = Field(description="wall time of the search, s")

    @property
    def layouts_per_s(self) -> float:
        """Candidates evaluated (memory-checked) per second."""
        return self.memory_checked / self.elapsed_s if self.elapsed_s > 0 else 0.0


class SearchResult(Result):
    """Everything ``paraplan plan`` reports."""

    model: str = Field(description="model name")
    hardware: str = Field(description="hardware profile name")
    gpus: int = Field(description="GPUs offered")
    objective: str = Field(description="throughput, memory or cost")
    plans: list[Plan] = Field(description="top plans, best first")
    best: Plan = Field(description="the best plan")
    total_feasible: int = Field(description="priced plans that fit")
    stats: SearchStats = Field(description="search statistics")
    reference: Plan | None = Field(None, description="a reference layout priced by the same model")
    explanation: list[str] = Field(default_factory=list, description="why the best wins, derived from numbers")
    refined: bool = Field(False, description="top plans re-ranked by the discrete-event simulator")
