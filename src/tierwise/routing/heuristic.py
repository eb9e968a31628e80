"""The first ``auto`` router: the seeds' complexity signals, weighed into a tier.

Points add up from the signals (see ``WEIGHTS``); below ``fast_below`` goes to the fast tier,
from ``deep_from`` on to the deep tier, the rest to balanced. Confidence grows with the distance
to the nearest threshold. Every contributing signal becomes a reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Decision, RouteRequest, register
from .signals import DESCRIPTIONS

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


@register("heuristic")
class HeuristicRouter:
    name = "heuristic"

    def __init__(self, settings: "Settings", fast_below: float = 1.0, deep_from: float = 4.5,
                 weights: dict[str, float] | None = None, **_: Any) -> None:
        tiers = settings.catalog.tier_order
        self.fast = "fast" if "fast" in tiers else tiers[0]
        self.balanced = settings.default_tier
        self.deep = "deep" if "deep" in tiers else tiers[-1]
        self.fast_below = fast_below
        self.deep_from = deep_from
        self.weights = {**WEIGHTS, **(weights or {})}

    def score(self, request: RouteRequest) -> tuple[float, list[tuple[str, str]]]:
        s = request.signals
        hits: list[tuple[str, dict[str, Any]]] = []
        if s.tokens > 2000:
            hits.append(("long_prompt", {"tokens": s.tokens}))
        if s.tokens > 50_000:
            hits.append(("very_long_prompt", {"tokens": s.tokens}))
        if s.conditionals >= 2:
            hits.append(("conditional", {"n": s.conditionals}))
        if s.multi_step:
            hits.append(("multi_step", {}))
        if s.analysis:
            hits.append(("analysis", {}))
        if s.documents >= 2:
            hits.append(("documents", {"n": s.documents}))
        if s.code:
            hits.append(("code", {}))
        if s.code_task:
            hits.append(("code_task", {}))
        if s.turns > 6:
            hits.append(("turns", {"n": s.turns}))
        if s.tools:
            hits.append(("tools", {"n": s.tools}))
        if s.math:
            hits.append(("math", {}))
        if s.stakes:
            hits.append(("stakes", {}))
        if s.short_output:
            hits.append(("short_output", {}))
        if s.chars < 200 and not s.code:
            hits.append(("short_prompt", {}))
        total = 0.0
        reasons: list[tuple[str, str]] = []
        for key, fmt in hits:
            w = self.weights.get(key, 0.0)
            total += w
            reasons.append((key, DESCRIPTIONS[key].format(**fmt)))
        return total, reasons

    def total(self, request: RouteRequest) -> float:
        """The complexity score alone (no reason strings): for callers that only compare it."""
        s = request.signals
        w = self.weights
        t = 0.0
        if s.tokens > 2000:
            t += w["long_prompt"]
        if s.tokens > 50_000:
            t += w["very_long_prompt"]
        if s.conditionals >= 2:
            t += w["conditional"]
        if s.multi_step:
            t += w["multi_step"]
        if s.analysis:
            t += w["analysis"]
        if s.documents >= 2:
            t += w["documents"]
        if s.code:
            t += w["code"]
        if s.code_task:
            t += w["code_task"]
        if s.turns > 6:
            t += w["turns"]
        if s.tools:
            t += w["tools"]
        if s.math:
            t += w["math"]
        if s.stakes:
            t += w["stakes"]
        if s.short_output:
            t += w["short_output"]
        if s.chars < 200 and not s.code:
            t += w["short_prompt"]
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
