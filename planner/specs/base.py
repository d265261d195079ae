"""Common base for every spec: frozen pydantic v2 models that refuse unknown keys."""

from __future__ import annotations

import functools
import types
import typing
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator


def strip_control(text: str) -> str:
    """``text`` without control and format characters (terminal escapes, carriage returns, bidi
    overrides), so a name read from a file cannot rewrite the terminal it is printed on."""
    if text.isprintable():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf")).strip()


#: A name or one-line description read from a file: printed as given, control characters removed.
PrintableStr = Annotated[str, AfterValidator(strip_control)]


@functools.lru_cache(maxsize=None)
def _number_fields(cls: type) -> tuple[str, ...]:
    """Names of the int / float (or optional int / float) fields of a spec class."""
    names = []
    for name, info in cls.model_fields.items():
        ann = info.annotation
        args = typing.get_args(ann) if typing.get_origin(ann) in (typing.Union, types.UnionType) else (ann,)
        if any(a in (int, float) for a in args):
            names.append(name)
    return tuple(names)


class Spec(BaseModel):
    """Frozen, extra-forbidding pydantic model; every field carries a description.

    Numbers are numbers: ``inf``/``nan`` are refused (``allow_inf_nan=False``: a YAML ``.inf`` peak
    would make MFU 0 %), and so is a bool where a number is expected (pydantic's lax mode reads YAML
    ``num_layers: true`` as 1)."""

    # defer_build: a model's validator is built on first use, so a command pays only for the specs it reads.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, defer_build=True,
                              allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data):
        if isinstance(data, dict):
            for name in _number_fields(cls):
                value = data.get(name)
                if isinstance(value, bool):
                    raise ValueError(f"{name}: expected a number, got {str(value).lower()}")
        return data

    def replace(self, **changes):
        """Return a validated copy with ``changes`` applied (field name -> new value)."""
        data = self.model_dump()
        data.update(changes)
        return type(self).model_validate(data)
