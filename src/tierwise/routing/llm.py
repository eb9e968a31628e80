"""The ``llm`` strategy: the fast tier (Haiku) classifies the request's complexity.

It asks through the same upstream seam as everything else, with structured output (a forced tool
whose schema is ``{tier, confidence, reason}``), and caches the answer per prompt hash, so a
repeated prompt costs nothing to route. If the classifier cannot be reached or answers out of
schema, the ``fallback`` strategy (heuristic by default) decides and the reasons say so.
"""

from __future__ import annotations

import collections
import hashlib
from typing import TYPE_CHECKING, Any

from ..errors import APIError
from .base import Decision, RouteRequest, build_router

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["LLMRouter", "CLASSIFY_TOOL"]

CLASSIFY_TOOL = {
    "name": "route",
    "description": "Record how demanding the request is, to choose a model tier.",
    "input_schema": {
        "type": "object",
        "properties": {
            "tier": {"type": "string", "enum": ["fast", "balanced", "deep"],
                     "description": "fast: short bounded answers (classify, extract, label, brief summary); "
                                    "balanced: multi-step reasoning, code, drafting, judgement; "
                                    "deep: long chains of dependent reasoning, high stakes, many documents."},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reason": {"type": "string", "description": "one short phrase a person understands"},
        },
        "required": ["tier", "confidence", "reason"],
    },
}

INSTRUCTION = ("You route requests to model tiers. Decide which tier the request below needs and call the `route` tool. "
               "Ask: is the output short and schema-bound? is a mistake cheap to catch? does it need multi-step reasoning?\n\n"
               "<request>\n{text}\n</request>")


class LLMRouter:
    name = "llm"

    def __init__(self, settings: "Settings", upstream: Any = None, model: str | None = None, cache_size: int = 10_000,
                 fallback: str = "heuristic", max_chars: int = 6000) -> None:
        self.upstream = upstream
        self.model = model or settings.catalog.model_for_tier(settings.catalog.tier_order[0]).id
        self.tiers = set(settings.catalog.tier_order)
        self.fallback = build_router(fallback, settings)
        self.cache: collections.OrderedDict[str, Decision] = collections.OrderedDict()
        self.cache_size = cache_size
        self.max_chars = max_chars
        self.calls = 0

    def _key(self, request: RouteRequest) -> str:
        return hashlib.blake2b(request.text.encode(), digest_size=16).hexdigest()

    def decide(self, request: RouteRequest) -> Decision:
        """Synchronous callers get the cached classification, or the fallback strategy's decision."""
        hit = self.cache.get(self._key(request))
        if hit is not None:
            return hit
        d = self.fallback.decide(request)
        return Decision(tier=d.tier, confidence=d.confidence, reasons=("llm router not consulted (synchronous call)",) + d.reasons,
                        router=self.name, task=request.task)

    async def adecide(self, request: RouteRequest) -> Decision:
        key = self._key(request)
        hit = self.cache.get(key)
        if hit is not None:
            self.cache.move_to_end(key)
            return hit
        if self.upstream is None:
            return self.decide(request)
        from ..upstream.base import call_json

        params = {"model": self.model, "max_tokens": 200, "tools": [CLASSIFY_TOOL],
                  "tool_choice": {"type": "tool", "name": "route"},
                  "messages": [{"role": "user", "content": INSTRUCTION.format(text=request.text[: self.max_chars])}]}
        try:
            self.calls += 1
            reply = await call_json(self.upstream, params)
        except APIError as exc:
            d = self.fallback.decide(request)
            return Decision(tier=d.tier, confidence=d.confidence, router=self.name, task=request.task,
                            reasons=(f"llm classifier unavailable ({exc.error_type}); fallback {self.fallback.name}",) + d.reasons)
        decision = self._parse(reply, request)
        if decision is None:
            d = self.fallback.decide(request)
            return Decision(tier=d.tier, confidence=d.confidence, router=self.name, task=request.task,
                            reasons=("llm classifier answered out of schema; fallback " + self.fallback.name,) + d.reasons)
        self.cache[key] = decision
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return decision

    def _parse(self, reply: dict[str, Any], request: RouteRequest) -> Decision | None:
        for block in reply.get("content") or ():
            if isinstance(block, dict) and block.get("type") == "tool_use" and block.get("name") == "route":
                data = block.get("input") or {}
                tier = data.get("tier")
                try:
                    confidence = min(1.0, max(0.0, float(data.get("confidence", 0.5))))
                except (TypeError, ValueError):
                    return None
                if tier not in self.tiers:
                    return None
                reason = str(data.get("reason") or "").strip()[:200] or "no reason given"
                return Decision(tier=tier, confidence=round(confidence, 2), router=self.name, task=request.task,
                                reasons=(f"{self.model} classified: {reason}",))
        return None
