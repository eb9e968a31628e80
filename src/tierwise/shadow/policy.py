"""Which live calls a shadow call may replay, and on which tier: pure functions, no I/O.

A call is eligible when it was routed (a task type or ``auto``; explicit model ids, thinking
affinity and cascades are not), its key and task type are not excluded, and replaying it can have no
side effect. "Side effect" is read conservatively: only the model's answer is ever compared and no
tool is ever executed, but a request that declares any tool not listed in ``shadow.read_only_tools``
(server tools included: they run at the provider), carries MCP servers, or continues a tool loop
(a ``tool_use`` or ``tool_result`` block in its turns) is never replayed.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["side_effect_reason", "shadow_tier_for", "share_for", "pair_sides"]


def side_effect_reason(body: Mapping[str, Any], read_only: frozenset[str] | set[str]) -> str | None:
    """Why replaying ``body`` could have a side effect, or None when it cannot."""
    for t in body.get("tools") or ():
        name = t.get("name") if isinstance(t, dict) else None
        if not isinstance(name, str) or name not in read_only:
            return f"tool {name!r} is not marked read-only (shadow.read_only_tools)"
    if body.get("mcp_servers"):
        return "MCP servers"
    for m in body.get("messages") or ():
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            for b in content:
                if isinstance(b, dict) and b.get("type") in ("tool_result", "tool_use", "server_tool_use",
                                                             "mcp_tool_use", "mcp_tool_result"):
                    return "a tool turn (tool_use / tool_result)"
    return None


def shadow_tier_for(kind: str, live_tier: str | None, compare: Mapping[str, str], tier_order: Sequence[str]) -> str | None:
    """The tier to replay on: ``compare[kind]`` if configured, else the next cheaper tier, or the next
    stronger one for a call on the cheapest tier; None when there is no other tier (or no live tier)."""
    if live_tier is None or live_tier not in tier_order:
        return None
    want = compare.get(kind)
    if want is not None:
        return want if want != live_tier else None
    i = list(tier_order).index(live_tier)
    if i > 0:
        return tier_order[i - 1]
    return tier_order[1] if len(tier_order) > 1 else None


def pair_sides(live_tier: str, shadow_tier: str, tier_order: Sequence[str]) -> tuple[str, str]:
    """(cheaper tier, stronger tier) of a pair."""
    order = list(tier_order)
    return (live_tier, shadow_tier) if order.index(live_tier) < order.index(shadow_tier) else (shadow_tier, live_tier)


def share_for(kind: str, conf: Mapping[str, Any]) -> float:
    """The share of ``kind``'s live calls to replay (``kind`` is a task type or ``auto``)."""
    if kind == "auto":
        return float(conf.get("auto") or 0.0)
    tasks = conf.get("tasks") or {}
    if kind in tasks:
        return float(tasks[kind])
    return float(conf.get("sample") or 0.0)
