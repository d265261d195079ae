"""Units parsing: bandwidth, bytes, time, FLOP rate, multipliers, clear errors."""

from __future__ import annotations

import pytest

from planner.errors import SpecError
from planner.units import parse_bandwidth, parse_bytes, parse_quantity, parse_time, resolve


@pytest.mark.parametrize("text, bytes_per_s", [
    ("25GB/s", 25e9), ("200Gb/s", 25e9), ("1.6TB/s", 1.6e12), ("400Gbps", 50e9), ("1GiB/s", 2**30),
    ("50 MB/s", 50e6), ("25", 25e9),
])
def test_bandwidth(text, bytes_per_s):
    assert parse_bandwidth(text) == pytest.approx(bytes_per_s)


@pytest.mark.parametrize("text, n", [("64GiB", 64 * 2**30), ("80GB", 80e9), ("512MiB", 2**29), ("1TB", 1e12),
                                     ("16", 16 * 2**30)])
def test_bytes(text, n):
    assert parse_bytes(text) == pytest.approx(n)


@pytest.mark.parametrize("text, s", [("5us", 5e-6), ("2.5ms", 2.5e-3), ("1s", 1.0), ("800ns", 8e-7)])
def test_time(text, s):
    assert parse_time(text) == pytest.approx(s)


@pytest.mark.parametrize("text, factor", [("x2", 2.0), ("x1.5", 1.5), ("*0.5", 0.5), ("2x", 2.0)])
def test_multiplier(text, factor):
    assert parse_quantity(text, "bandwidth").factor == factor


def test_resolve_converts_to_the_field_unit():
    assert resolve("50GB/s", 25.0, "bandwidth", 1e9) == pytest.approx(50.0)
    assert resolve("200Gb/s", 50.0, "bandwidth", 1e9) == pytest.approx(25.0)
    assert resolve("x2", 25.0, "bandwidth", 1e9) == pytest.approx(50.0)
    assert resolve("80GB", 64.0, "bytes", 2**30) == pytest.approx(80e9 / 2**30)
    assert resolve("10ms", 5.0, "time", 1e-6) == pytest.approx(10_000.0)
    assert resolve("1.2PFLOPS", 191.5, "flops", 1e12) == pytest.approx(1200.0)
    assert resolve("1,024", 8, None) == 1024


@pytest.mark.parametrize("text, kind", [("25GHz", "bandwidth"), ("64GB/s", "bytes"), ("fast", "time"), ("x0", None),
                                        ("5 parsecs", "time")])
def test_bad_units_name_the_accepted_ones(text, kind):
    with pytest.raises(SpecError) as exc:
        parse_quantity(text, kind, field="hardware.x")
    msg = str(exc.value)
    assert "hardware.x" in msg
    assert "x2" in msg or "multiplier" in msg
    if kind == "bandwidth":
        assert "25GB/s" in msg and "200Gb/s" in msg


def test_multiplier_of_unset_field_is_refused():
    with pytest.raises(SpecError, match="unset"):
        resolve("x2", None, None, field="layout.dp_shard")
