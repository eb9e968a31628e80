"""Fallback chains: where a request may go when its first target fails.

Configured per tier in ``[resilience.fallbacks]`` (``"*"`` for every tier), e.g.::

    [resilience.fallbacks]
    fast = ["<kind>", "next_tier"]  # the same model on a peer upstream, then the next tier up
    "*" = ["<kind>"]

Entries name upstreams by kind or move the tier. A kind is any registered in
``tierwise.upstream.kinds`` (the built-in ones are listed there and in docs/production.md): the same
model on that upstream, when its ``[resilience.<kind>]`` table is enabled and the kind serves the
model; the kind of the primary needs no table (useful after a tier move). ``next_tier`` is the next
tier up, ``tier:<name>`` a named tier. An entry naming an unknown kind is refused when the config
is loaded, one naming a kind that is not configured when the proxy starts. Tier changes
apply only to routed requests (``auto`` or ``tierwise/<task>``): a request that names a model is
only ever answered by that model. Every tier a fallback reaches must be allowed by the caller's
key, and must have a context window that fits the prompt. Nothing falls back by default:
``fallbacks`` is empty until configured, so no request silently reaches a pricier tier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..adapt import adapt_request
from ..errors import AdaptationError
from ..jsonbody import dumps as dumps_body

if TYPE_CHECKING:
    from ..catalog import Catalog, Model
    from ..dispatch import Plan
    from ..upstream import Upstream

__all__ = ["Target", "build_chain"]


@dataclass(slots=True)
class Target:
    upstream: "Upstream"
    model_id: str
    tier: str | None
    kind: str                      # primary | tier | the kind of a peer upstream (upstream/kinds.py)
    body: bytes
    adapted: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.upstream.name, self.model_id)


def build_chain(plan: "Plan", body: dict[str, Any], out_body: bytes, *, primary: "Upstream",
                fallbacks: Mapping[str, Any], catalog: "Catalog", allowed: Callable[[str | None], bool] | None = None,
                prompt_tokens: int = 0, peers: Mapping[str, Any] | None = None) -> list[Target]:
    """The primary target then the configured fallbacks, de-duplicated, in order. ``peers``: the
    configured upstreams by kind; an entry naming none of them and no tier move is skipped."""
    peers = peers or {}
    chain = [Target(primary, plan.model_id, plan.tier, "primary", out_body, list(plan.adapted))]
    entries = fallbacks.get(plan.tier or "", None) if fallbacks else None
    if entries is None and fallbacks:
        entries = fallbacks.get("*")
    if not entries:
        return chain
    seen = {chain[0].key}
    cur_tier = plan.tier
    cur_model, cur_body = plan.model_id, out_body
    for entry in entries:
        entry = str(entry)
        if entry in peers:
            up = peers[entry]
            supports = getattr(up, "supports", None)
            if up is not None and (supports is None or supports(cur_model)):
                t = Target(up, cur_model, cur_tier, entry, cur_body)
                if t.key not in seen:
                    seen.add(t.key)
                    chain.append(t)
            continue
        if not plan.routed or cur_tier is None:
            continue
        if entry == "next_tier":
            above = catalog.tiers_above(cur_tier)
            candidates = [t for t in above if allowed is None or allowed(t)]
        elif entry.startswith("tier:"):
            name = entry[5:]
            candidates = [name] if name in catalog.tiers and (allowed is None or allowed(name)) else []
        else:
            continue
        for tier in candidates:
            model = catalog.model_for_tier(tier)
            if prompt_tokens + int(body.get("max_tokens") or 0) > model.context_window:
                continue
            new_body, adapted = _adapted(body, model, tier)
            if new_body is None:
                continue
            t = Target(primary, model.id, tier, "tier", new_body, adapted)
            if t.key not in seen:
                seen.add(t.key)
                chain.append(t)
                cur_tier, cur_model, cur_body = tier, model.id, new_body
            break
    return chain


def _adapted(body: dict[str, Any], model: "Model", tier: str) -> tuple[bytes | None, list[str]]:
    b = dict(body)
    b["messages"] = list(body.get("messages") or [])
    try:
        adapted = adapt_request(b, model, tier=tier)
    except AdaptationError:
        return None, []
    b["model"] = model.id
    return dumps_body(b), adapted
