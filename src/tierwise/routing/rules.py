"""The learned router's decision rules and the price order of a ladder (pure functions).

* The **difficulty rule** (artifact version 3, the default): the cheapest rung's predicted score is
  compared with non-increasing thresholds; each threshold it falls below is one rung up the ladder.
  A low predicted score for the cheap rung means a harder prompt, never a cheaper decision.
* The **gap rule** (artifact versions 1-2): the cheapest rung whose prediction is within
  ``tolerance`` of the best one. Kept so older artifacts decide as they did.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["DEFAULT_MIX", "blended_price", "mix_for", "thresholds_for_mix", "difficulty_rung", "difficulty_rungs",
           "choose_rung", "choose_rungs", "argmax"]

DEFAULT_MIX = (0.70, 0.25, 0.05)   # the seeds' example: 70% Haiku, 25% Sonnet, 5% Opus


def blended_price(price: Mapping[str, Any] | None) -> float | None:
    """USD per million tokens at 3 input tokens per output token (the usual blended list price)."""
    if not price:
        return None
    try:
        return (3.0 * float(price["input_per_mtok"]) + float(price["output_per_mtok"])) / 4.0
    except (KeyError, TypeError, ValueError):
        return None


def mix_for(rungs: int, mix: Sequence[float] = DEFAULT_MIX) -> list[float]:
    """A cheapest-first mix for ``rungs`` rungs: shares beyond the ladder fold into the last rung."""
    parts = [float(x) for x in mix][:rungs]
    if len(mix) > rungs:
        parts[-1] += float(sum(mix[rungs:]))
    parts += [0.0] * (rungs - len(parts))
    total = sum(parts)
    return [x / total for x in parts]


def thresholds_for_mix(cheap_scores: Sequence[float] | np.ndarray, mix: Sequence[float]) -> list[float]:
    """Thresholds on the cheapest rung's predicted score that put ``mix`` (cheapest first, one share
    per rung) of these prompts on each rung: the ``mix[0]`` share with the highest scores stays on the
    cheapest rung, the next ``mix[1]`` goes one rung up, and so on."""
    p = np.sort(np.asarray(cheap_scores, dtype=np.float64))[::-1]  # easiest (highest) first
    n = p.size
    out: list[float] = []
    cum = 0.0
    for share in list(mix)[:-1]:
        cum += float(share)
        k = int(round(cum * n))  # the first k prompts (highest scores) stay at or below this rung
        if n == 0 or k >= n:
            out.append(float(p[-1]) if n else 0.0)  # everyone is at or above the lowest score
        elif k <= 0:
            out.append(float(np.nextafter(p[0], np.inf)))  # nobody: strictly above the highest
        else:
            out.append(float(p[k - 1] + p[k]) / 2.0 if p[k - 1] != p[k] else float(np.nextafter(p[k], np.inf)))
    for j in range(1, len(out)):  # non-increasing, whatever rounding did
        out[j] = min(out[j], out[j - 1])
    return out


def difficulty_rung(cheap_score: float, thresholds: Sequence[float]) -> int:
    """How many rungs up the ladder (0 = the cheapest) the difficulty rule goes: one per threshold
    the cheapest rung's predicted score falls below (thresholds are non-increasing)."""
    k = 0
    for t in thresholds:
        if cheap_score < t:
            k += 1
        else:
            break
    return k


def difficulty_rungs(cheap_scores: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Vectorised :func:`difficulty_rung` (steps up the ladder, not ladder positions)."""
    k = np.zeros(len(cheap_scores), dtype=np.int64)
    alive = np.ones(len(cheap_scores), dtype=bool)
    for t in thresholds:
        alive &= np.asarray(cheap_scores) < t
        k += alive
    return k


def choose_rung(pred: Sequence[float] | np.ndarray, tolerance: float, order: Sequence[int] | None = None) -> int:
    """The gap rule of artifact versions 1-2: the cheapest rung (in ``order``, cheapest first) whose
    prediction is within ``tolerance`` of the best one."""
    best = max(pred)
    for i in order if order is not None else range(len(pred)):
        if pred[i] >= best - tolerance - 1e-12:
            return int(i)
    return argmax(pred)


def argmax(pred: Sequence[float] | np.ndarray) -> int:
    best = 0
    for j in range(1, len(pred)):
        if pred[j] > pred[best]:
            best = j
    return best


def choose_rungs(P: np.ndarray, tolerance: float, order: Sequence[int] | None = None) -> np.ndarray:
    """Vectorised :func:`choose_rung` over rows of P."""
    order = list(order) if order is not None else list(range(P.shape[1]))
    ok = P[:, order] >= P.max(1, keepdims=True) - tolerance - 1e-12
    return np.array(order)[np.argmax(ok, axis=1)]
