"""Read a run plan (YAML or JSON) into a ``RunPlanSpec``; errors name the file and the field."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

import hwprofiles
from hwprofiles.loader import read_yaml

from ..errors import SpecError, format_validation_error, suggest
from ..specs.run import RunPlanSpec


def run_plan_from_dict(data: dict, source: str) -> RunPlanSpec:
    """Validate a run-plan mapping; SpecError naming ``source`` on failure."""
    try:
        return RunPlanSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), source=source) from None


SUFFIX = "-run.yaml"


def shipped_run_plans() -> dict[str, Path]:
    """Run plans shipped in hwprofiles/data (``<name>-run.yaml``), by name."""
    folder = Path(hwprofiles.__file__).parent / "data"
    return {p.name[: -len(SUFFIX)]: p for p in sorted(folder.glob(f"*{SUFFIX}"))}


def load_run_plan(path: str | Path) -> RunPlanSpec:
    """The run plan in ``path`` (YAML; JSON is YAML too), or a shipped plan by name (``llama3-405b``)."""
    shipped = shipped_run_plans()
    p = shipped.get(str(path)) or Path(path)
    if not p.is_file():
        if not p.exists() and not any(c in str(path) for c in "/\\."):
            raise SpecError(f"no such run plan; {suggest(str(path), list(shipped))} (or a YAML/JSON file path)",
                            source=str(path))
        raise SpecError("no such file" if not p.exists() else "not a file", source=str(path))
    return run_plan_from_dict(read_yaml(p), str(path))
