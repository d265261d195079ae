"""Every unit paraplan reads from a user, parsed in one place.

Accepted forms (case of the prefix matters only for bits vs bytes: ``b`` = bit, ``B`` = byte):

- bandwidth: ``25GB/s``, ``200Gb/s``, ``1.6TB/s``, ``400Gbps``, ``100GiB/s``, ``50MB/s``;
  returned in bytes per second.
- bytes: ``64GiB``, ``80GB``, ``512MiB``, ``1TB``; returned in bytes.
- time: ``5us``, ``2.5ms``, ``1s``, ``800ns``; returned in seconds.
- FLOP rate: ``191.5TFLOPS``, ``1.2PFLOPS``; returned in FLOP/s.
- count: ``15T``, ``2.5B``, ``300M``, ``1e12`` (tokens); ``B`` here is a billion (= ``G``).
- multiplier: ``x2``, ``x1.5``, ``*0.5``, ``2x``; returned as a factor of the current value.
- plain number: ``8``, ``1e3``, ``1,024``; taken in the unit of the field it sets.

SI prefixes are decimal (k = 1e3, M = 1e6, G = 1e9, T = 1e12, P = 1e15); ``Ki/Mi/Gi/Ti`` are
binary (2**10 ...). A bandwidth in bits is divided by 8.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from .errors import SpecError

Kind = Literal["bandwidth", "bytes", "time", "flops"]

DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}
TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}

ACCEPTED = {
    "bandwidth": "25GB/s, 200Gb/s, 1.6TB/s, 400Gbps, 100GiB/s (B = bytes, b = bits)",
    "bytes": "64GiB, 80GB, 512MiB, 1TB",
    "time": "800ns, 5us, 2.5ms, 1s",
    "flops": "191.5TFLOPS, 1.2PFLOPS",
}
MULTIPLIER_FORMS = "x2, x1.5, *0.5, 2x"

_NUMBER = r"[-+]?(?:\d[\d,_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_MULT = re.compile(rf"^\s*(?:[x*×]\s*({_NUMBER})|({_NUMBER})\s*[x×])\s*$")
_PLAIN = re.compile(rf"^\s*({_NUMBER})\s*$")
_WITH_UNIT = re.compile(rf"^\s*({_NUMBER})\s*([A-Za-zµ/]+)\s*$")
_BANDWIDTH = re.compile(r"^(Ki|Mi|Gi|Ti|Pi|[kKMGTP]?)(B|b)(?:/s|ps)$")
_BYTES = re.compile(r"^(Ki|Mi|Gi|Ti|Pi|[kKMGTP]?)B$")
_FLOPS = re.compile(r"^([kKMGTP]?)FLOP(?:S|/s)$", re.IGNORECASE)


@dataclass(frozen=True)
class Quantity:
    """A parsed value: either an absolute amount in SI units or a factor of the current value.

    Attributes:
        value: the amount in SI units (bytes/s, bytes, s, FLOP/s), or the bare number when
            ``has_unit`` is False; ``None`` for a multiplier.
        factor: multiplier of the current value (``x2`` -> 2.0); ``None`` for an absolute value.
        has_unit: True when the text carried a unit (so ``value`` is in SI units).
    """

    value: float | None = None
    factor: float | None = None
    has_unit: bool = False

    @property
    def is_factor(self) -> bool:
        """True for ``x2``-style multipliers."""
        return self.factor is not None


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("_", ""))


def _unit_error(text: str, kind: Kind | None, field: str | None, allow_factor: bool = True) -> SpecError:
    forms = [ACCEPTED[kind]] if kind else []
    forms.append("a plain number")
    if allow_factor:
        forms.append(f"a multiplier ({MULTIPLIER_FORMS})")
    return SpecError(f"cannot read '{text}'; accepted: {'; '.join(forms)}", field=field)


def _scale_of(unit: str, kind: Kind) -> float | None:
    """SI scale of ``unit`` for ``kind``, or None when the unit is not of that kind."""
    if kind == "bandwidth":
        m = _BANDWIDTH.match(unit)
        if not m:
            return None
        prefix, b = m.groups()
        scale = BINARY[prefix] if prefix in BINARY else DECIMAL[prefix]
        return scale / 8 if b == "b" else scale
    if kind == "bytes":
        m = _BYTES.match(unit)
        if not m:
            return None
        prefix = m.group(1)
        return BINARY[prefix] if prefix in BINARY else DECIMAL[prefix]
    if kind == "time":
        return TIME_UNITS.get(unit)
    if kind == "flops":
        m = _FLOPS.match(unit)
        return DECIMAL[m.group(1).upper()] if m else None
    return None


def parse_quantity(text: str, kind: Kind | None = None, *, field: str | None = None,
                   allow_factor: bool = True) -> Quantity:
    """Parse ``text`` as a ``kind`` quantity, a plain number or (if allowed) a multiplier.

    Raises SpecError naming ``field`` and listing the accepted units when it cannot.
    """
    text = str(text).strip()
    m = _MULT.match(text)
    if m:
        if not allow_factor:
            raise _unit_error(text, kind, field, allow_factor)
        factor = _number(m.group(1) or m.group(2))
        if factor <= 0:
            raise SpecError(f"multiplier must be > 0, got '{text}'", field=field)
        return Quantity(factor=factor)
    m = _PLAIN.match(text)
    if m:
        return Quantity(value=_number(m.group(1)))
    m = _WITH_UNIT.match(text)
    if m and kind is not None:
        scale = _scale_of(m.group(2), kind)
        if scale is not None:
            return Quantity(value=_number(m.group(1)) * scale, has_unit=True)
    raise _unit_error(text, kind, field, allow_factor)


def parse_bandwidth(text: str, *, field: str | None = None) -> float:
    """Bandwidth text (``25GB/s``, ``200Gb/s``) in bytes per second; a plain number is GB/s."""
    q = parse_quantity(text, "bandwidth", field=field, allow_factor=False)
    return q.value if q.has_unit else q.value * 1e9


def parse_bytes(text: str, *, field: str | None = None) -> float:
    """Size text (``64GiB``, ``80GB``) in bytes; a plain number is GiB."""
    q = parse_quantity(text, "bytes", field=field, allow_factor=False)
    return q.value if q.has_unit else q.value * 2.0**30


_COUNT = re.compile(rf"^\s*({_NUMBER})\s*([kKMGBTP]?)\s*$")
COUNT_PREFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "T": 1e12, "P": 1e15}


def parse_count(text: str, *, field: str | None = None) -> float:
    """A count such as ``15T`` (1.5e13), ``2.5B`` (2.5e9, B = billion), ``300M``, ``1e12``, ``1,000``."""
    m = _COUNT.match(str(text))
    if not m:
        raise SpecError(f"cannot read '{text}'; accepted: 15T, 2.5B, 300M, 1e12 (a plain number or "
                        "k/M/B/G/T/P suffix)", field=field)
    value = _number(m.group(1)) * COUNT_PREFIX[m.group(2)]
    check_number(value, field, text=text)
    return value


def check_number(value: float | None, field: str | None, *, above: float | None = None,
                 at_least: float | None = None, below: float | None = None, at_most: float | None = None,
                 text: str | None = None) -> None:
    """SpecError naming ``field`` unless ``value`` (None passes) is a finite number (not NaN or
    infinite) with ``above < value``, ``at_least <= value``, ``value < below``, ``value <= at_most``."""
    if value is None:
        return
    shown = text if text is not None else f"{value:g}"
    if not math.isfinite(value):
        raise SpecError(f"'{shown}' is not a finite number", field=field)
    for bound, ok, word in ((above, lambda b: value > b, ">"), (at_least, lambda b: value >= b, ">="),
                            (below, lambda b: value < b, "<"), (at_most, lambda b: value <= b, "<=")):
        if bound is not None and not ok(bound):
            raise SpecError(f"{shown} must be {word} {bound:g}", field=field)


def parse_time(text: str, *, field: str | None = None) -> float:
    """Time text (``5us``, ``2ms``) in seconds; a plain number is seconds."""
    q = parse_quantity(text, "time", field=field, allow_factor=False)
    return q.value


def resolve(text: str, current: float | None, kind: Kind | None, field_scale: float = 1.0,
            *, field: str | None = None) -> float:
    """The new value of a field currently holding ``current`` (in the field's own unit).

    ``field_scale`` is the size of the field's unit in SI units (1e9 for a ``_gbps`` field,
    2**30 for ``_gib``, 1e-6 for ``_us``, 1e12 for TFLOP/s). A multiplier scales ``current``;
    a value with a unit is converted to the field's unit; a plain number is taken as is.
    """
    q = parse_quantity(text, kind, field=field)
    if q.is_factor:
        if current is None:
            raise SpecError(f"'{text}' multiplies the current value, but the field is unset; give a value",
                            field=field)
        return current * q.factor
    return q.value / field_scale if q.has_unit else q.value
