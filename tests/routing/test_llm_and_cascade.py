from __future__ import annotations

import orjson
import pytest

from tierwise.cascade.run import run_cascade
from tierwise.errors import ConfigError, OverloadedError
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


def _sender(up, fail_first=0, log=None):
    calls = {"n": 0}

    async def send(body: bytes, model: str):
        calls["n"] += 1
        params = orjson.loads(body)
        if log is not None:
            log.append(params)
        if calls["n"] <= fail_first:
            params["max_tokens"] = 3  # force a cut-off answer on the cheap rungs
        return await up.send("/v1/messages", orjson.dumps(params), headers={}, stream=False)

    return send


async def test_cascade_escalates_on_failed_verification_and_counts_every_attempt(settings):
    router = build_router("cascade", settings, verifiers=["stop_reason"])
    original = {"model": "auto", "max_tokens": 300, "messages": [{"role": "user", "content": "Explain the trade-offs"}]}
    d = router.decide(RouteRequest(original))
    assert d.tier == "fast" and d.cascade.ladder == ("fast", "balanced", "deep")
    first = dict(original, model="claude-haiku-5-5")
    log: list = []
    result = await run_cascade(_sender(OfflineUpstream(latency_scale=0), fail_first=1, log=log), settings.catalog,
                               d.cascade, original, first)
    assert result.escalations == 1 and result.model == "claude-sonnet-5-5" and result.tier == "balanced"
    assert [a["model"] for a in result.attempts] == ["claude-haiku-5-5", "claude-sonnet-5-5"]
    assert result.attempts[0]["failed"] == "stop_reason: stop_reason was max_tokens" and result.attempts[1]["verified"]
    assert result.prior_cost_nanos == result.attempts[0]["cost_nanos"] > 0
    assert result.prior_usage.output_tokens == result.attempts[0]["output_tokens"]
    # the escalated call carries a short note of why the first answer failed
    assert "failed an automatic check (stop_reason: stop_reason was max_tokens)" in log[1]["system"]


async def test_cascade_stops_at_the_top(settings):
    router = build_router("cascade", settings, ladder=["fast", "balanced"], verifiers=["stop_reason"], note=False)
    d = router.decide(RouteRequest.from_prompt("x"))
    original = {"model": "auto", "max_tokens": 300, "messages": [{"role": "user", "content": "x"}]}
    result = await run_cascade(_sender(OfflineUpstream(latency_scale=0), fail_first=5), settings.catalog, d.cascade,
                               original, dict(original, model="claude-haiku-5-5"))
    assert result.escalations == 1 and not result.attempts[-1]["verified"]
    assert "system" not in original


def test_cascade_config_errors(settings):
    with pytest.raises(ConfigError, match="needs two or more known tiers"):
        build_router("cascade", settings, ladder=["fast"])
    with pytest.raises(ConfigError, match="needs two or more known tiers"):
        build_router("cascade", settings, ladder=["fast", "premium"])
