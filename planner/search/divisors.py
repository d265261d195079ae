"""Divisor enumeration by prime factorisation (no linear scan over the GPU count).

A GPU count of 10^12 has 169 divisors; scanning 1..n to find them takes hours, factorising takes
trial division up to sqrt(n) over 2, 3 and 6k +- 1 only (about sqrt(n) / 3 steps, and far fewer for
the smooth numbers GPU counts are). The layout space builds every degree tuple from these lists,
so a new degree (cp, ep, ...) is one more ``divisors`` call, never a new scan.
"""

from __future__ import annotations

from functools import lru_cache


def _strip(n: int, p: int) -> tuple[int, int]:
    """(n with every factor p divided out, how many there were)."""
    e = 0
    while n % p == 0:
        n //= p
        e += 1
    return n, e


@lru_cache(maxsize=256)
def factorise(n: int) -> tuple[tuple[int, int], ...]:
    """Prime factorisation of ``n`` >= 1 as ((prime, exponent), ...), primes ascending."""
    if n < 1:
        raise ValueError(f"n({n}) must be >= 1")
    out = []
    candidates = [2, 3]
    f = 5
    while True:
        for p in candidates:
            n, e = _strip(n, p)
            if e:
                out.append((p, e))
        if f * f > n:
            break
        candidates = [f, f + 2]
        f += 6
    if n > 1:
        out.append((n, 1))
    return tuple(out)


@lru_cache(maxsize=256)
def divisors(n: int) -> tuple[int, ...]:
    """All divisors of ``n`` >= 1, ascending, built from its factorisation."""
    divs = [1]
    for p, e in factorise(n):
        divs = [d * p**k for d in divs for k in range(e + 1)]
    return tuple(sorted(divs))


def divisors_upto(n: int, limit: int) -> tuple[int, ...]:
    """Divisors of ``n`` that are <= ``limit``, ascending. A small limit (a pipeline degree is at
    most the layer count) is tested directly: ``limit`` divisions, whatever the size of ``n``."""
    if limit * limit < n:
        return tuple(d for d in range(1, limit + 1) if n % d == 0)
    return tuple(d for d in divisors(n) if d <= limit)
