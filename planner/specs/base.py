"""Common base for every spec: frozen pydantic v2 models that refuse unknown keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    """Frozen, extra-forbidding pydantic model; every field carries a description."""

    # defer_build: a model's validator is built on first use, so a command pays only for the specs it reads.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, defer_build=True)

    def replace(self, **changes):
        """Return a validated copy with ``changes`` applied (field name -> new value)."""
        data = self.model_dump()
        data.update(changes)
        return type(self).model_validate(data)
