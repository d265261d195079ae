"""A scenario: model x hardware x GPU count x training recipe x layout — what one estimate needs.

Scenarios are saved as JSON (``paraplan plan --export json``) and read back by
``paraplan estimate --layout FILE`` and ``paraplan whatif FILE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

import hwprofiles  # noqa: F401 - installs the recipe loader a TrainingSpec resolves its recipe through

from .cost import estimate
from .errors import SpecError, format_validation_error
from .io import read_json
from .specs import HardwareProfile, Layout, ModelSpec, Spec, TrainingSpec
from .specs.bounds import MAX_RANKS
from .specs.straggler import StragglerSpec

SCENARIO_KIND = "paraplan-scenario"
#: Scenario file versions this paraplan reads (``to_file_dict`` writes the last one).
SCENARIO_VERSIONS = (1,)


class Scenario(Spec):
    """Everything an estimate needs."""

    model: ModelSpec = Field(description="the model")
    hardware: HardwareProfile = Field(description="the hardware profile of every node")
    gpus: int = Field(gt=0, le=MAX_RANKS, description="ranks in the job")
    training: TrainingSpec = Field(description="training recipe")
    layout: Layout = Field(description="parallel layout")
    stragglers: StragglerSpec = Field(default_factory=StragglerSpec,
                                      description="slow ranks / nodes and per-rank variation (priced by the simulator)")

    def estimate(self):
        """Analytic estimate of this scenario (SpecError when it has stragglers: the simulator prices them)."""
        if self.stragglers.active:
            raise SpecError("the scenario has stragglers, which the simulator prices: use --engine simulate "
                            "(or paraplan simulate)", field="--engine")

        return estimate(self.model, self.hardware, self.training, self.layout, self.gpus, breakdown=True)

    def to_file_dict(self) -> dict[str, Any]:
        """The JSON form written by ``--export json`` (full specs, so the file stands alone; stragglers only
        when there are some, so files stay as they were)."""
        data = self.model_dump(mode="json", exclude=None if self.stragglers.active else {"stragglers"})
        return {"kind": SCENARIO_KIND, "version": SCENARIO_VERSIONS[-1], **data}


def infer_dp(gpus: int, tp: int, pp: int, cp: int = 1) -> int:
    """dp = gpus / (tp * pp * cp); SpecError with the arithmetic when it does not divide."""
    if gpus <= 0:
        raise SpecError(f"gpus({gpus}) must be > 0", field="gpus")
    per_replica = tp * pp * cp
    if gpus % per_replica:
        raise SpecError(
            f"gpus({gpus}) % (tp({tp}) * pp({pp}) * cp({cp}) = {per_replica}) = {gpus % per_replica} != 0",
            field="gpus",
        )
    return gpus // per_replica


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario JSON file; SpecError naming the file and field when it is malformed."""
    path = Path(path)
    data = read_json(path, "scenario")
    if not isinstance(data, dict) or data.get("kind") != SCENARIO_KIND:
        raise SpecError(f"not a paraplan scenario file (expected \"kind\": \"{SCENARIO_KIND}\")",
                        source=str(path))
    version = data.get("version", SCENARIO_VERSIONS[-1])
    if isinstance(version, bool) or version not in SCENARIO_VERSIONS:
        raise SpecError(f"{version!r} is not a scenario version this paraplan reads "
                        f"({', '.join(map(str, SCENARIO_VERSIONS))})", field="version", source=str(path))
    data = {k: v for k, v in data.items() if k not in ("kind", "version", "estimate", "plan")}
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), source=str(path)) from None
