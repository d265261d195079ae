"""How well a prediction is backed: the measured runs of its layout class and their errors.

The shipped table (planner/data/evidence.json, written by ``paraplan bench evidence --write`` from
``paraplan bench accuracy`` over every hwprofiles/data/*_runs.csv and ``bench steps`` over every
*_train_steps.json; a golden test fails when it is stale) holds one entry per measured run that
paraplan predicts: its class (planner.evidence.classify), its throughput error (+ = paraplan
predicted faster than measured) and its measured MFU on paraplan's own convention (the predicted
MFU divided by 1 + error). Looking a class up is a scan of about a hundred entries: no estimate is
run at plan time.
"""

from __future__ import annotations

import functools
import statistics
from pathlib import Path

from pydantic import Field

from ..errors import SpecError
from ..io import read_json
from ..specs import HardwareProfile, Layout, TrainingSpec
from ..specs.base import Spec
from ..specs.recipe_source import recipe_named
from .classify import RELAX_ORDER, LayoutClass, classify

TABLE_KIND = "paraplan-evidence"
TABLE_VERSION = 1
#: Row references listed per class at most (the count is always the full one).
MAX_REFS = 8
#: Class attributes as the summary names them.
ATTRIBUTE_WORDS = {"scale": "scale band", "sharded_dp": "dp sharding", "hardware": "hardware family",
                   "attention": "attention kernel"}


def default_table_path() -> Path:
    """planner/data/evidence.json, shipped with the package."""
    return Path(__file__).resolve().parents[1] / "data" / "evidence.json"


class EvidenceRow(Spec):
    """One measured run as the table holds it."""

    file: str = Field(description="data file of the run (hwprofiles/data/...)")
    row: str = Field(description="row id in that file (a CSV row_id or a steps-file case)")
    source: str = Field(description="source key of the run (paper, report)")
    model: str = Field(description="model name as the file gives it")
    gpus: int = Field(description="GPUs of the run")
    layout: str = Field(description="layout, micro-batch and batch as paraplan priced them")
    layout_class: LayoutClass = Field(description="class of the run")
    error_pct: float = Field(description="throughput error of paraplan's prediction, % (+ = predicted faster)")
    predicted_mfu: float = Field(description="paraplan's MFU of the run, 0..1")
    measured_mfu: float = Field(description="measured MFU on paraplan's convention: predicted / (1 + error)")

    @property
    def ref(self) -> str:
        """``published_runs.csv#312``."""
        return f"{self.file}#{self.row}"


class EvidenceTable(Spec):
    """The shipped table."""

    kind: str = Field(description=f"always '{TABLE_KIND}'")
    version: int = Field(description="table format version")
    generated_by: str = Field(description="the command that writes it")
    files: list[str] = Field(description="data files read, relative to the repository")
    rows: list[EvidenceRow] = Field(description="measured runs paraplan predicts")


class Evidence(Spec):
    """How well one prediction is backed (shown beside it; never changes its ranking)."""

    layout_class: str = Field(description="the prediction's class (LayoutClass.describe)")
    rows: int = Field(description="measured runs of exactly this class")
    median_error_pct: float | None = Field(description="their median throughput error, % (+ = paraplan faster)")
    median_abs_error_pct: float | None = Field(description="their median absolute error, %")
    refs: list[str] = Field(description=f"those runs (file#row, at most {MAX_REFS})")
    nearest_rows: int = Field(0, description="with no run of this class: runs of the nearest class that has some")
    nearest_differs: list[str] = Field(default_factory=list, description="attributes in which the nearest runs differ")
    nearest_median_error_pct: float | None = Field(None, description="median error of the nearest runs, %")
    best_measured_mfu: float | None = Field(description="best measured MFU of the ceiling scope, 0..1")
    best_measured_ref: str | None = Field(description="the run that measured it")
    ceiling_scope: str | None = Field(description="runs the best MFU is taken over: recipe x hardware x precision, "
                                      "else hardware x precision")
    predicted_mfu: float = Field(description="the prediction's MFU, 0..1")
    above_best_measured: bool = Field(description="the predicted MFU is above the best measured one of its scope")

    def summary(self) -> str:
        """``3 measured runs of this class, median error +6.1% (...)`` / ``no measured run of this class (nearest: 5 runs differing in
        scale, median +8.0%)``."""
        if self.rows:
            return (f"{self.rows} measured run{'s' if self.rows > 1 else ''} of this class, median error "
                    f"{self.median_error_pct:+.1f}% (median |error| {self.median_abs_error_pct:.1f}%)")
        text = "no measured run of this class"
        if self.nearest_rows:
            differs = ", ".join(ATTRIBUTE_WORDS.get(k, k) for k in self.nearest_differs)
            text += (f" (nearest: {self.nearest_rows} run{'s' if self.nearest_rows > 1 else ''} differing in "
                     f"{differs}, median {self.nearest_median_error_pct:+.1f}%)")
        return text

    def ceiling_note(self) -> str | None:
        """One line when the prediction is above the best measured MFU of its scope, else None."""
        if not self.above_best_measured or self.best_measured_mfu is None:
            return None
        return (f"predicted MFU {self.predicted_mfu:.1%} is above the best measured MFU of {self.ceiling_scope} "
                f"({self.best_measured_mfu:.1%}, {self.best_measured_ref})")


@functools.lru_cache(maxsize=4)
def load_table(path: str | None = None) -> EvidenceTable:
    """The evidence table at ``path`` (default: the shipped one); SpecError naming the file if malformed."""
    file = path or str(default_table_path())
    data = read_json(file, "evidence table")
    try:
        table = EvidenceTable.model_validate(data)
    except ValueError as exc:
        raise SpecError(f"not an evidence table ({str(exc).splitlines()[0]}); regenerate it with "
                        "paraplan bench evidence --write", source=file) from None
    if table.kind != TABLE_KIND or table.version != TABLE_VERSION:
        raise SpecError(f"not a version-{TABLE_VERSION} {TABLE_KIND} table", source=file)
    return table


def _matching(rows: list[EvidenceRow], cls: LayoutClass, ignore: tuple[str, ...] = ()) -> list[EvidenceRow]:
    keys = [k for k in LayoutClass.model_fields if k not in ignore]
    return [r for r in rows if all(getattr(r.layout_class, k) == getattr(cls, k) for k in keys)]


def _distance(a: LayoutClass, b: LayoutClass) -> float:
    """How far two classes are: each differing attribute weighs 2^(its place in RELAX_ORDER), so one
    attribute later in the order outweighs every earlier one together (the nearest class differs in
    as few and as early attributes as possible; equal distances differ in the same attributes). Two
    releases of one framework (recipes of one family, ``recipe_family``) differ least of all: 1/2."""
    def weight(i: int, k: str) -> float:
        if k == "recipe" and recipe_family(a.recipe) == recipe_family(b.recipe):
            return 0.5
        return float(2**i)
    return sum(weight(i, k) for i, k in enumerate(RELAX_ORDER) if getattr(a, k) != getattr(b, k))


def recipe_family(name: str) -> str:
    """The root of a derived recipe's ``base:`` chain (llm-foundry-2309 -> llm-foundry -> fsdp1), else the recipe
    itself: its measured runs bound what its siblings reach (torchtitan-0.3 and torchtitan)."""
    try:
        while (base := recipe_named(name).base) is not None:
            name = base
    except (SpecError, RuntimeError):  # a recipe name no longer shipped, or no recipe source installed
        pass
    return name


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def evidence_for_class(cls: LayoutClass, predicted_mfu: float, table: EvidenceTable | None = None) -> Evidence:
    """The Evidence of a prediction of class ``cls`` with MFU ``predicted_mfu``."""
    table = table or load_table()
    same = _matching(table.rows, cls)
    nearest: list[EvidenceRow] = []
    differs: list[str] = []
    if not same and table.rows:
        costs = [(_distance(r.layout_class, cls), r) for r in table.rows]
        low = min(c for c, _r in costs)
        nearest = [r for c, r in costs if c == low]
        differs = [k for k in RELAX_ORDER if getattr(nearest[0].layout_class, k) != getattr(cls, k)]
    scope_rows = _matching(table.rows, cls, tuple(k for k in LayoutClass.model_fields
                                                  if k not in ("recipe", "hardware", "precision")))
    scope = f"{cls.recipe} on {cls.hardware} in {cls.precision}"
    if not scope_rows:  # the recipe's family: its base and the releases derived from it (torchtitan from torchtitan-0.3)
        family = recipe_family(cls.recipe)
        same_chip = _matching(table.rows, cls, tuple(k for k in LayoutClass.model_fields
                                                     if k not in ("hardware", "precision")))
        scope_rows = [r for r in same_chip if recipe_family(r.layout_class.recipe) == family]
        measured = ", ".join(sorted({r.layout_class.recipe for r in scope_rows}))
        scope = f"{cls.recipe}'s family ({measured}) on {cls.hardware} in {cls.precision}"
    if not scope_rows:
        scope_rows = _matching(table.rows, cls, tuple(k for k in LayoutClass.model_fields
                                                      if k not in ("hardware", "precision")))
        scope = f"{cls.hardware} in {cls.precision} (any recipe)"
    best = max(scope_rows, key=lambda r: r.measured_mfu, default=None)
    return Evidence(
        layout_class=cls.describe(), rows=len(same), median_error_pct=_median([r.error_pct for r in same]),
        median_abs_error_pct=_median([abs(r.error_pct) for r in same]), refs=[r.ref for r in same[:MAX_REFS]],
        nearest_rows=len(nearest), nearest_differs=differs,
        nearest_median_error_pct=_median([r.error_pct for r in nearest]),
        best_measured_mfu=best.measured_mfu if best else None, best_measured_ref=best.ref if best else None,
        ceiling_scope=scope if best else None, predicted_mfu=predicted_mfu,
        above_best_measured=best is not None and predicted_mfu > best.measured_mfu,
    )


def evidence_for(hardware: HardwareProfile, training: TrainingSpec, layout: Layout, gpus: int,
                 predicted_mfu: float, table: EvidenceTable | None = None, *, attention: str) -> Evidence:
    """The Evidence of one prediction (classified by planner.evidence.classify; ``attention`` its attention
    kernel generation, planner.pricing.compute.attention_generation)."""
    return evidence_for_class(classify(hardware, training, layout, gpus, attention=attention), predicted_mfu, table)
