"""Cost-quality scores of routers on recorded outcomes (PGR, APGR, CPT, AIQ).

Conventions (two-rung ladders follow RouteLLM, arXiv:2406.18665; AIQ follows RouterBench,
arXiv:2403.12031):

* PGR (performance gap recovered) of a quality ``q``: ``(q - q_weak) / (q_strong - q_weak)``.
* A curve is a list of operating points ``(x, q)`` where ``x`` in [0, 1] is either the share of
  calls to the strong rung (RouteLLM's axis) or the normalised cost
  ``(cost - cost_weak) / (cost_strong - cost_weak)`` (the cost axis; cascades pay for failed
  attempts so they can go past 1).
* APGR: the area under PGR(x) for x in [0, 1] (trapezoids over the operating points, the curve
  completed with the always-weak point (0, q_weak) and the always-strong point (1, q_strong)
  when it does not reach an end; RouteLLM's ``apgr_metric`` on a curve spanning 0-100 %).
* CPT(p): the smallest x at which the curve (linearly interpolated) reaches PGR ``p``
  (RouteLLM's "calls to reach p% of the gap"; reported as a fraction).
* AIQ: the area under the non-decreasing concave hull of the (cost, quality) points over
  [cost_min, cost_max], divided by the width (RouterBench's average improvement in quality).
* Quality at a cost budget and cost to reach a quality are read off the same hull (any two
  operating points can be mixed at random, so the hull is achievable).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["pgr", "complete_curve", "apgr", "cpt", "upper_hull", "hull_value", "aiq", "quality_at_cost",
           "cost_for_quality"]


def pgr(q: np.ndarray | float, q_weak: float, q_strong: float) -> np.ndarray:
    gap = q_strong - q_weak
    if abs(gap) < 1e-12:
        return np.zeros_like(np.asarray(q, dtype=np.float64))
    return (np.asarray(q, dtype=np.float64) - q_weak) / gap


def complete_curve(x: Sequence[float], q: Sequence[float], q_weak: float, q_strong: float) -> tuple[np.ndarray, np.ndarray]:
    """Sort by x and add (0, q_weak) / (1, q_strong) when the curve does not reach 0 / 1."""
    x = np.asarray(x, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    x, q = x[order], q[order]
    if x.size == 0 or x[0] > 1e-12:
        x, q = np.concatenate([[0.0], x]), np.concatenate([[q_weak], q])
    if x[-1] < 1 - 1e-12:
        x, q = np.concatenate([x, [1.0]]), np.concatenate([q, [q_strong]])
    return x, q


def _clip_to_unit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x[-1] > 1.0:
        k = int(np.searchsorted(x, 1.0, side="left"))
        y1 = float(np.interp(1.0, x, y)) if k < len(x) else float(y[-1])
        x, y = np.concatenate([x[:k], [1.0]]), np.concatenate([y[:k], [y1]])
    return x, y


def apgr(x: Sequence[float], q: Sequence[float], q_weak: float, q_strong: float) -> float:
    """Average PGR over x in [0, 1] (see module doc)."""
    xs, qs = complete_curve(x, q, q_weak, q_strong)
    xs, ys = _clip_to_unit(xs, pgr(qs, q_weak, q_strong))
    return float(np.trapezoid(ys, xs))


def cpt(x: Sequence[float], q: Sequence[float], q_weak: float, q_strong: float, target: float) -> float | None:
    """Smallest x where PGR reaches ``target`` (e.g. 0.5), interpolating between points; None if never."""
    xs, qs = complete_curve(x, q, q_weak, q_strong)
    ys = pgr(qs, q_weak, q_strong)
    if ys[0] >= target:
        return float(xs[0])
    for i in range(1, len(xs)):
        if ys[i] >= target - 1e-12:
            if ys[i] == ys[i - 1] or xs[i] == xs[i - 1]:
                return float(xs[i])
            t = (target - ys[i - 1]) / (ys[i] - ys[i - 1])
            return float(xs[i - 1] + t * (xs[i] - xs[i - 1]))
    return None


def upper_hull(cost: Sequence[float], q: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The non-decreasing concave hull of (cost, quality) points (RouterBench's R~), left to right."""
    pts = sorted(zip(np.asarray(cost, float), np.asarray(q, float)), key=lambda p: (p[0], -p[1]))
    # non-decreasing: drop points dominated by a cheaper point at least as good
    mono: list[tuple[float, float]] = []
    for c, v in pts:
        if mono and v <= mono[-1][1] + 1e-15:
            continue
        if mono and c == mono[-1][0]:
            mono[-1] = (c, max(v, mono[-1][1]))
            continue
        mono.append((c, v))
    hull: list[tuple[float, float]] = []
    for p in mono:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # remove hull[-1] if it lies on or below the chord hull[-2] -> p
            if (y2 - y1) * (p[0] - x1) <= (p[1] - y1) * (x2 - x1) + 1e-15:
                hull.pop()
            else:
                break
        hull.append(p)
    return np.array([h[0] for h in hull]), np.array([h[1] for h in hull])


def hull_value(hc: np.ndarray, hq: np.ndarray, c: float) -> float:
    """Quality of the hull at cost ``c`` (flat after the last point; nan before the first)."""
    if c < hc[0] - 1e-15:
        return float("nan")
    return float(np.interp(c, hc, hq))


def aiq(cost: Sequence[float], q: Sequence[float], c_min: float, c_max: float) -> float:
    """Area under the hull over [c_min, c_max] / (c_max - c_min). Below the cheapest point the
    hull is taken as that point's quality (include the always-cheapest point to avoid this)."""
    hc, hq = upper_hull(cost, q)
    if c_max <= c_min:
        return float(hq[-1])
    grid = np.concatenate([[c_min], hc[(hc > c_min) & (hc < c_max)], [c_max]])
    vals = np.interp(grid, hc, hq)
    return float(np.trapezoid(vals, grid) / (c_max - c_min))


def quality_at_cost(cost: Sequence[float], q: Sequence[float], budget: float) -> float:
    hc, hq = upper_hull(cost, q)
    return hull_value(hc, hq, budget)


def cost_for_quality(cost: Sequence[float], q: Sequence[float], target: float) -> float | None:
    """Smallest cost at which the hull reaches quality ``target``; None if it never does."""
    hc, hq = upper_hull(cost, q)
    if hq[0] >= target:
        return float(hc[0])
    for i in range(1, len(hc)):
        if hq[i] >= target - 1e-12:
            t = (target - hq[i - 1]) / (hq[i] - hq[i - 1])
            return float(hc[i - 1] + t * (hc[i] - hc[i - 1]))
    return None
