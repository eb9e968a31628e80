from __future__ import annotations

from tierwise.errors import OverloadedError
from tierwise.routing import RouteRequest, build_router
from tierwise.upstream.offline import OfflineUpstream


async def test_llm_router_classifies_through_upstream_and_caches(settings):
    up = OfflineUpstream(latency_scale=0)
    router = build_router("llm", settings, upstream=up)
    req = RouteRequest.from_prompt("Summarize this email in one line: the meeting moved to 3pm.")
    d = await router.adecide(req)
    assert d.tier in ("fast", "balanced", "deep") and d.router == "llm"
    assert d.reasons[0].startswith("claude-haiku-5-5 classified:")
    # the classifier call used structured output through the seam: a forced tool on the fast tier
    assert up.calls == 1
    again = await router.adecide(RouteRequest.from_prompt("Summarize this email in one line: the meeting moved to 3pm."))
    assert again == d and up.calls == 1  # cached per prompt hash
    assert router.decide(req) == d       # sync callers see the cache too


async def test_llm_router_falls_back_when_classifier_fails(settings):
    class Down:
        name = "down"

        async def send(self, *a, **k):
            raise OverloadedError("overloaded")

    router = build_router("llm", settings, upstream=Down())
    d = await router.adecide(RouteRequest.from_prompt("Classify: refund please"))
    assert d.tier == "fast" and d.reasons[0] == "llm classifier unavailable (overloaded_error); fallback heuristic"
