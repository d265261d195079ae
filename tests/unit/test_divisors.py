"""Divisor enumeration by factorisation, and the immediate refusal of huge GPU counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwprofiles import load_hardware, load_model
from planner.errors import SpecError
from planner.search import SearchConstraints
from planner.search.divisors import divisors, divisors_upto, factorise
from planner.search.space import validate_constraints
from planner.specs import TrainingSpec


@given(st.integers(min_value=1, max_value=5000))
def test_divisors_equal_the_linear_scan(n):
    assert divisors(n) == tuple(d for d in range(1, n + 1) if n % d == 0)


def test_factorisation_of_large_counts():
    assert factorise(10**12) == ((2, 12), (5, 12))
    assert len(divisors(10**12)) == 13 * 13
    assert factorise(131072) == ((2, 17),)
    assert factorise(999_999_999_989) == ((999_999_999_989, 1),)  # a prime: trial division to sqrt
    assert divisors_upto(3072, 128)[-1] == 128
    assert divisors_upto(8 * 999_999_999_989, 126) == (1, 2, 4, 8)  # no factorisation needed
    for n, limit in ((3072, 40), (3072, 3072), (10**12, 126), (97, 200)):
        assert divisors_upto(n, limit) == tuple(d for d in divisors(n) if d <= limit)


def test_batch_smaller_than_forced_dp_is_refused_at_once():
    model, hw = load_model("llama3.1-405b"), load_hardware("h100-sxm-80gb")
    with pytest.raises(SpecError, match=r"dp\(1000000000\) > global_batch\(16384\)") as err:
        validate_constraints(model, hw, 10**12, TrainingSpec(global_batch_size=16384), SearchConstraints())
    assert err.value.field == "--gpus"
    validate_constraints(model, hw, 131072, TrainingSpec(global_batch_size=16384), SearchConstraints())
