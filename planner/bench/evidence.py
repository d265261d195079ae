"""``paraplan bench evidence``: build the evidence table (planner/data/evidence.json) from the measured
runs paraplan predicts, so that ``plan`` and ``estimate`` can say how well each estimate is backed
without predicting those runs at plan time.

Inputs, all under hwprofiles/data/ (a new file of either kind is picked up by its name):

- every ``*_runs.csv`` in the published-runs schema (published_runs.csv, torchtitan_runs.csv, ...),
  predicted as ``paraplan bench accuracy`` predicts them (planner.bench.accuracy.predicted_rows);
- every ``*_train_steps.json`` in the measured-steps schema, predicted as ``paraplan bench steps``.

Rows that ``bench accuracy`` skips are left out. The table is deterministic (no dates; rows in file
order); tests/golden/test_evidence_table.py rebuilds it and fails when the shipped one is stale, so
a change of the cost model or of the data is followed by ``paraplan bench evidence --write``.
"""

from __future__ import annotations

import json
from pathlib import Path

import hwprofiles
from hwprofiles import load_hardware

from ..evidence.table import TABLE_KIND, TABLE_VERSION, EvidenceRow, EvidenceTable, default_table_path
from ..scenario import Scenario
from ..search.priced_evidence import priced_class
from ..specs import Layout
from .accuracy import predicted_rows
from .steps import run_steps, step_model, step_training

GENERATED_BY = "paraplan bench evidence --write"


def data_dir() -> Path:
    """hwprofiles/data of this checkout."""
    return Path(hwprofiles.__file__).resolve().parent / "data"


def run_files(folder: Path | None = None) -> list[Path]:
    """Every published-runs CSV (``*_runs.csv``), sorted by name."""
    return sorted((folder or data_dir()).glob("*_runs.csv"))


def step_files(folder: Path | None = None) -> list[Path]:
    """Every measured-steps file (``*_train_steps.json``), sorted by name."""
    return sorted((folder or data_dir()).glob("*_train_steps.json"))


def _measured_mfu(predicted_mfu: float, error_pct: float) -> float:
    """MFU of the measured run on paraplan's convention: throughput error e = predicted / measured - 1."""
    return predicted_mfu / (1 + error_pct / 100)


def _row(file: Path, row: str, source: str, model: str, scenario: Scenario, error_pct: float,
         predicted_mfu: float, layout: str) -> EvidenceRow:
    return EvidenceRow(
        file=file.name, row=row, source=source, model=model, gpus=scenario.gpus, layout=layout,
        layout_class=priced_class(scenario.hardware, scenario.training, scenario.layout, scenario.gpus),
        error_pct=round(error_pct, 2), predicted_mfu=round(predicted_mfu, 4),
        measured_mfu=round(_measured_mfu(predicted_mfu, error_pct), 4))


def csv_rows(path: Path) -> list[EvidenceRow]:
    """The predicted rows of one published-runs CSV."""
    out = []
    for _cells, case, outcome in predicted_rows(path):
        if case is None or isinstance(outcome, str):
            continue
        out.append(_row(path, outcome.row_id, outcome.source_id, outcome.model, case.scenario, outcome.error_pct,
                        outcome.predicted_mfu, f"{outcome.layout} rc:{outcome.recompute}"))
    return out


def steps_rows(path: Path) -> list[EvidenceRow]:
    """The cases of one measured-steps file (one GPU each; the error as a throughput error)."""
    report = run_steps(str(path))
    hardware = load_hardware(report.hardware)
    data = json.loads(path.read_text())
    out = []
    for i, (raw, case) in enumerate(zip(data["steps"], report.cases, strict=True)):
        scenario = Scenario(model=step_model(raw), hardware=hardware, gpus=1,
                            training=step_training(raw, report.recipe), layout=Layout())
        error = (case.measured_s / case.predicted_s - 1) * 100
        out.append(_row(path, str(i), path.stem, case.model, scenario, error, case.predicted_mfu,
                        f"1 GPU mb{case.micro_batch} seq{case.seq} rc:{'full' if case.recompute else 'none'}"))
    return out


def build_table(folder: Path | None = None) -> EvidenceTable:
    """The evidence table of every data file under ``folder`` (default hwprofiles/data)."""
    rows: list[EvidenceRow] = []
    files = run_files(folder) + step_files(folder)
    for path in files:
        rows += csv_rows(path) if path.suffix == ".csv" else steps_rows(path)
    return EvidenceTable(kind=TABLE_KIND, version=TABLE_VERSION, generated_by=GENERATED_BY,
                         files=[f"hwprofiles/data/{p.name}" for p in files], rows=rows)


def table_text(table: EvidenceTable) -> str:
    """The table as the shipped file holds it (one row per line, so diffs show what moved)."""
    head = table.model_dump(mode="json", exclude={"rows"})
    lines = [json.dumps(r.model_dump(mode="json"), separators=(", ", ": ")) for r in table.rows]
    body = ",\n  ".join(lines)
    text = json.dumps(head, indent=1)[:-2]
    return f'{text},\n "rows": [\n  {body}\n ]\n}}\n'


def shipped_path() -> Path:
    """Where ``--write`` puts the table: planner/data/evidence.json."""
    return default_table_path()
