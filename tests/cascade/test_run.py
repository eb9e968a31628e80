"""The cascade strategy (``tierwise.cascade``): cheapest rung first, verify, escalate."""

from __future__ import annotations

import orjson
import pytest

from tierwise.cascade import run_cascade
from tierwise.errors import ConfigError
from tierwise.routing import RouteRequest, build_router
from tierwise.upstream.offline import OfflineUpstream


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
    assert [a.model for a in result.attempts] == ["claude-haiku-5-5", "claude-sonnet-5-5"]
    assert result.attempts[0].failed_check == "stop_reason: stop_reason was max_tokens" and result.attempts[1].verified
    assert result.prior_cost_nanos == result.attempts[0].cost_nanos > 0
    assert result.prior_usage.output_tokens == result.attempts[0].output_tokens
    # the escalated call carries a short note of why the first answer failed
    assert "failed an automatic check (stop_reason: stop_reason was max_tokens)" in log[1]["system"]


async def test_cascade_stops_at_the_top(settings):
    router = build_router("cascade", settings, ladder=["fast", "balanced"], verifiers=["stop_reason"], note=False)
    d = router.decide(RouteRequest.from_prompt("x"))
    original = {"model": "auto", "max_tokens": 300, "messages": [{"role": "user", "content": "x"}]}
    result = await run_cascade(_sender(OfflineUpstream(latency_scale=0), fail_first=5), settings.catalog, d.cascade,
                               original, dict(original, model="claude-haiku-5-5"))
    assert result.escalations == 1 and not result.attempts[-1].verified
    assert "system" not in original


def test_cascade_config_errors(settings):
    with pytest.raises(ConfigError, match="needs two or more known tiers"):
        build_router("cascade", settings, ladder=["fast"])
    with pytest.raises(ConfigError, match="needs two or more known tiers"):
        build_router("cascade", settings, ladder=["fast", "premium"])
