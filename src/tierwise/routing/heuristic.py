"""The first ``auto`` router: the seeds' complexity signals, weighed into a tier.

Points add up from the signals (see ``WEIGHTS``); below ``fast_below`` goes to the fast tier,
from ``deep_from`` on to the deep tier, the rest to balanced. Confidence grows with the distance
to the nearest threshold. Every contributing signal becomes a reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .base import Decision, RouteRequest
from .signals import DESCRIPTIONS, Signals

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["HeuristicRouter", "WEIGHTS"]

WEIGHTS: dict[str, float] = {
    "long_prompt": 1.0,        # > 2,000 tokens
    "very_long_prompt": 2.0,   # > 50,000 tokens (in addition)
    "conditional": 0.75,       # two or more conditions
    "multi_step": 1.5,
    "analysis": 1.5,
    "documents": 1.5,          # two or more
    "code": 1.0,
    "code_task": 1.0,
    "turns": 0.75,             # more than 6 messages
    "tools": 0.5,
    "math": 0.75,
    "stakes": 2.0,
    "short_output": -2.0,
    "short_prompt": -0.5,      # under 200 characters
}


def _NONE(s: Signals) -> dict[str, Any]:
    return {}

# (signal, does it fire, the values its reason shows), in the order reasons are listed
RULES: tuple[tuple[str, Callable[[Signals], bool], Callable[[Signals], dict[str, Any]]], ...] = (
    ("long_prompt", lambda s: s.tokens > 2000, lambda s: {"tokens": s.tokens}),
    ("very_long_prompt", lambda s: s.tokens > 50_000, lambda s: {"tokens": s.tokens}),
    ("conditional", lambda s: s.conditionals >= 2, lambda s: {"n": s.conditionals}),
    ("multi_step", lambda s: s.multi_step, _NONE),
    ("analysis", lambda s: s.analysis, _NONE),
    ("documents", lambda s: s.documents >= 2, lambda s: {"n": s.documents}),
    ("code", lambda s: s.code, _NONE),
    ("code_task", lambda s: s.code_task, _NONE),
    ("turns", lambda s: s.turns > 6, lambda s: {"n": s.turns}),
    ("tools", lambda s: bool(s.tools), lambda s: {"n": s.tools}),
    ("math", lambda s: s.math, _NONE),
    ("stakes", lambda s: s.stakes, _NONE),
    ("short_output", lambda s: s.short_output, _NONE),
    ("short_prompt", lambda s: s.chars < 200 and not s.code, _NONE),
)


class HeuristicRouter:
    name = "heuristic"

    def __init__(self, settings: "Settings", fast_below: float = 1.0, deep_from: float = 4.5,
                 weights: dict[str, float] | None = None) -> None:
        tiers = settings.catalog.tier_order
        self.fast = "fast" if "fast" in tiers else tiers[0]
        self.balanced = settings.default_tier
        self.deep = "deep" if "deep" in tiers else tiers[-1]
        self.fast_below = fast_below
        self.deep_from = deep_from
        self.weights = {**WEIGHTS, **(weights or {})}
        self._weighed = tuple((fired, self.weights.get(key, 0.0)) for key, fired, _ in RULES)

    def score(self, request: RouteRequest) -> tuple[float, list[tuple[str, str]]]:
        """The complexity score and, for each signal that fired, its reason."""
        s = request.signals
        total = 0.0
        reasons: list[tuple[str, str]] = []
        for key, fired, fmt in RULES:
            if fired(s):
                total += self.weights.get(key, 0.0)
                reasons.append((key, DESCRIPTIONS[key].format(**fmt(s))))
        return total, reasons

    def total(self, request: RouteRequest) -> float:
        """The complexity score alone (no reason strings): for callers that only compare it."""
        return self.total_of(request.signals)

    def total_of(self, s: Signals) -> float:
        """``total`` of these signals: the weights of the ``RULES`` that fire, added in their order from 0
        (the rules paired with their weights once, in ``__init__``; no reason strings)."""
        t: float = 0
        for fired, w in self._weighed:
            if fired(s):
                t += w
        return t

    def decide(self, request: RouteRequest) -> Decision:
        total, hits = self.score(request)
        if total < self.fast_below:
            tier, margin = self.fast, self.fast_below - total
        elif total >= self.deep_from:
            tier, margin = self.deep, total - self.deep_from
        else:
            tier, margin = self.balanced, min(total - self.fast_below, self.deep_from - total)
        confidence = round(min(0.95, 0.5 + margin / 4), 2)
        reasons = [text for _, text in hits] or ["no complexity signal"]
        reasons.append(f"complexity score {total:g} -> {tier}")
        return Decision(tier=tier, confidence=confidence, reasons=tuple(reasons), router=self.name, task=request.task)
