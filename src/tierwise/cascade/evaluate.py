"""Cascades on recorded outcomes: ask the cheapest rung first, let a verifier read its answer, and
escalate to the next rung when the verifier doubts it. Every attempt is paid for (the cost of a
failed cheap attempt is added to the escalated call), so cascades sit on the cost axis only.

The verifier only reads the recorded answer *after* that rung answered; it is trained on the
training split's recorded answers (``cascade.training.fit_verifier``) and never sees the test split.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..replay.curves import Curve, OutcomeMatrix

__all__ = ["cascade_curve", "cascade_point", "verifier_matrix"]


def verifier_matrix(verifiers: Sequence[Any], m: OutcomeMatrix) -> np.ndarray:
    """(n, rungs-1) probabilities that rung i's recorded answer is good enough; nan where no
    verifier exists for the rung (that rung is skipped by the cascade)."""
    R = len(m.ladder)
    V = np.full((m.n, R - 1), np.nan)
    for v in verifiers:
        i = v.rung
        if i >= R - 1:
            continue
        V[:, i] = [v.prob(m.responses[j][i], m.prompts[j]) for j in range(m.n)]
    return V


def cascade_point(V: np.ndarray, m: OutcomeMatrix, threshold: float) -> tuple[float, float, float]:
    """(mean cost, mean quality, share reaching the last rung) of the cascade at ``threshold``."""
    n, R = m.Q.shape
    cost = np.zeros(n)
    done = np.zeros(n, dtype=bool)
    final = np.full(n, R - 1)
    for i in range(R - 1):
        if np.all(np.isnan(V[:, i])):
            continue
        active = ~done
        cost[active] += m.C[active, i]
        accept = active & (V[:, i] >= threshold)
        final[accept] = i
        done |= accept
    cost[~done] += m.C[~done, R - 1]
    rows = np.arange(n)
    return float(cost.mean()), float(m.Q[rows, final].mean()), float((final == R - 1).mean())


def cascade_curve(name: str, V: np.ndarray, m: OutcomeMatrix, points: int = 300) -> Curve:
    """Sweep the verifier threshold from 'accept everything' to 'escalate everything'."""
    vals = V[~np.isnan(V)]
    qs = np.unique(np.quantile(vals, np.linspace(0, 1, points))) if vals.size else np.array([])
    thresholds = np.concatenate([[-np.inf], qs, [np.inf]])
    pts = [cascade_point(V, m, t) for t in thresholds]
    return Curve(name, np.array([p[0] for p in pts]), np.array([p[1] for p in pts]), np.array([p[2] for p in pts]),
                 kind="cascade", extra={"thresholds": thresholds})
