"""Stragglers: ranks or nodes running below their nominal speed, and per-rank speed variation.

Priced by the simulator (``simulate.stragglers``): a slow rank slows every collective and pipeline
hand-off it takes part in, so its tensor-parallel group, its pipeline and, through the gradient
reduction, every data-parallel replica wait for it. Fractions are of the nominal (profile) speed.
"""

from __future__ import annotations

from pydantic import Field, ValidationError, model_validator

from ..errors import SpecError, format_validation_error
from .base import Spec


class SlowPart(Spec):
    """One slow rank or node: its compute, intra-node links and NIC at fractions of their speed."""

    rank: int | None = Field(None, ge=0, description="global rank (DeviceMesh order of the layout)")
    node: int | None = Field(None, ge=0, description="node index (all its ranks)")
    compute: float = Field(1.0, gt=0, le=1, description="fraction of its nominal kernel speed")
    link: float = Field(1.0, gt=0, le=1, description="fraction of its intra-node link bandwidth")
    nic: float = Field(1.0, gt=0, le=1, description="fraction of its NIC bandwidth")

    @model_validator(mode="after")
    def _one_place(self):
        if (self.rank is None) == (self.node is None):
            raise ValueError("give exactly one of rank or node")
        return self

    def describe(self) -> str:
        """``rank 17: compute 0.80`` (only the slowed parts)."""
        where = f"rank {self.rank}" if self.rank is not None else f"node {self.node}"
        parts = [f"{k} {v:.2f}" for k, v in (("compute", self.compute), ("link", self.link), ("nic", self.nic))
                 if v < 1]
        return f"{where}: {', '.join(parts) or 'nominal'}"


STRAGGLER_KEYS = ("rank", "node", "compute", "link", "nic")


def parse_slow_part(text: str, field: str = "--straggler") -> SlowPart:
    """``rank=17,compute=0.8`` / ``node=3,nic=0.5`` -> SlowPart; SpecError naming ``field``."""
    data: dict = {}
    for item in filter(None, (s.strip() for s in str(text).split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in STRAGGLER_KEYS or not value.strip():
            raise SpecError(f"'{item}' is not key=value with key one of: {', '.join(STRAGGLER_KEYS)} "
                            "(e.g. rank=17,compute=0.8)", field=field)
        try:
            data[key] = int(value) if key in ("rank", "node") else float(value)
        except ValueError:
            raise SpecError(f"'{item}': {key} must be {'an integer' if key in ('rank', 'node') else 'a number'}",
                            field=field) from None
    try:
        return SlowPart(**data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), field=field) from None


class StragglerSpec(Spec):
    """The stragglers of a job: slow parts and per-rank compute-speed variation."""

    slow: list[SlowPart] = Field(default_factory=list, description="slow ranks or nodes")
    variation: float = Field(
        0.0, ge=0, lt=1, description="per-rank compute speed variation: lognormal sigma of a mean-one speed factor")
    seed: int = Field(0, ge=0, description="random seed of the variation")

    @property
    def active(self) -> bool:
        """True when anything is slowed."""
        return bool(self.slow) or self.variation > 0
