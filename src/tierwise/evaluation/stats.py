"""Small, dependency-free statistics for reports: Wilson intervals, percentiles, ratio intervals."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Sequence

__all__ = ["z_for", "wilson", "percentile", "mean_ci", "ratio_ci", "diff_ci"]


def z_for(confidence: float = 0.95) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (well-behaved at 0 and n)."""
    if n <= 0:
        return (0.0, 1.0)
    z = z_for(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) with a normal-approximation interval."""
    n = len(values)
    if n == 0:
        return (0.0, 0.0, 0.0)
    m = sum(values) / n
    if n == 1:
        return (m, m, m)
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    half = z_for(confidence) * math.sqrt(var / n)
    return (m, m - half, m + half)


def _mv(values: Sequence[float]) -> tuple[float, float, int]:
    n = len(values)
    m = sum(values) / n
    var = sum((v - m) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return m, var, n


def ratio_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float] | None:
    """mean(b)/mean(a) with a delta-method interval on the log scale; None if undefined."""
    if len(a) < 2 or len(b) < 2:
        return None
    ma, va, na = _mv(a)
    mb, vb, nb = _mv(b)
    if ma <= 0 or mb <= 0:
        return None
    r = mb / ma
    se = math.sqrt(va / (na * ma * ma) + vb / (nb * mb * mb))
    z = z_for(confidence)
    return (r, r * math.exp(-z * se), r * math.exp(z * se))


def diff_ci(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> tuple[float, float, float] | None:
    """p2 - p1 with Newcombe's hybrid Wilson interval; None without samples on both sides."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, confidence)
    l2, u2 = wilson(k2, n2, confidence)
    d = p2 - p1
    lo = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    hi = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return (d, lo, hi)
