"""The attempt loop against a scripted upstream: retries, caps, fallbacks, breaker, streams."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tierwise.config import load_settings
from tierwise.errors import (
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    UpstreamConnectionError,
)
from tierwise.resilience.attempts import AttemptLoop
from tierwise.resilience.breaker import CircuitBreaker
from tierwise.resilience.fallback import Target, build_chain
from tierwise.resilience.retry import RetryPolicy
from tierwise.upstream.base import UpstreamResponse
from tierwise.upstream.offline import stream_events, synthesize
from tierwise.upstream.sse import format_event

CATALOG = load_settings(None, environ={}).catalog
MSG = {"model": "claude-haiku-5-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


class Scripted:
    """Answers by a script: an APIError instance to raise, "ok", or "stream"/"stream-error"/"stream-empty"."""

    def __init__(self, name: str, script: list[Any]) -> None:
        self.name = name
        self.script = list(script)
        self.calls: list[str] = []

    async def send(self, path, body, *, headers, stream, model=None):
        self.calls.append(model)
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, BaseException):
            raise step
        msg = synthesize(dict(MSG, model=model))
        if not stream:
            return UpstreamResponse(200, {}, body=orjson.dumps(msg), upstream=self.name)

        async def chunks():
            if step == "stream-empty":
                return
            if step == "stream-error":
                yield format_event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                return
            for name, data, _ in stream_events(msg):
                yield format_event(name, data)

        return UpstreamResponse(200, {}, chunks=chunks(), upstream=self.name)

    async def aclose(self):
        pass


async def nosleep(_):
    return None


def loop(**kw):
    kw.setdefault("policy", RetryPolicy(backoff_base=0.01))
    kw.setdefault("breaker", None)
    return AttemptLoop(catalog=CATALOG, sleep=nosleep, **kw)


def target(up, model="claude-haiku-5-5", kind="primary"):
    return Target(up, model, CATALOG.tier_of(model), kind, orjson.dumps(dict(MSG, model=model)))


async def test_retry_then_success_records_every_attempt():
    up = Scripted("a", [OverloadedError("o"), "ok"])
    atts: list = []
    out = await loop().run([target(up)], path="/v1/messages", headers={}, stream=False, attempts=atts)
    assert out.index == 0 and out.resp.status == 200
    assert [a.status for a in atts] == [529, 200] and atts[0].error_type == "overloaded_error"
    assert set(atts[0].as_json()) == {"model", "upstream", "status", "error_type", "latency_ms", "cost_nanos"}


async def test_non_retryable_fails_at_once():
    up = Scripted("a", [InvalidRequestError("bad")])
    atts: list = []
    with pytest.raises(InvalidRequestError):
        await loop().run([target(up), target(Scripted("b", []))], path="/v1/messages", headers={}, stream=False, attempts=atts)
    assert len(atts) == 1


@pytest.mark.parametrize("refusal", [PermissionDeniedError("bedrock: access denied"), NotFoundError("bedrock: no such model"),
                                     InvalidRequestError("bedrock: model not available in this region")])
async def test_fallback_refusal_does_not_mask_the_primary_error(refusal):
    """Primary 529, then Bedrock refuses with a 4xx about itself: the client gets the 529 (retry), both in attempts."""
    a = Scripted("anthropic", [OverloadedError("Overloaded")] * 5)
    b = Scripted("bedrock", [refusal])
    atts: list = []
    with pytest.raises(OverloadedError) as exc:
        await loop(retries_per_target=0).run([target(a), target(b, kind="bedrock")], path="/v1/messages", headers={},
                                             stream=False, attempts=atts)
    assert exc.value.message == "Overloaded"
    assert [(x.upstream, x.status, x.error_type) for x in atts] == [
        ("anthropic", 529, "overloaded_error"), ("bedrock", refusal.status, refusal.error_type)]


async def test_fallback_refusal_moves_on_down_the_chain():
    a = Scripted("anthropic", [OverloadedError("o")])
    b = Scripted("bedrock", [PermissionDeniedError("bedrock: access denied")])
    c = Scripted("anthropic", [])
    atts: list = []
    out = await loop(retries_per_target=0).run([target(a), target(b, kind="bedrock"),
                                                target(c, "claude-sonnet-5-5", kind="tier")],
                                               path="/v1/messages", headers={}, stream=False, attempts=atts)
    assert out.index == 2 and [x.status for x in atts] == [529, 403, 200]
    # ...but never past max_attempts: a refusal uses up a call too
    a, b, c = Scripted("anthropic", [OverloadedError("o")]), Scripted("bedrock", [NotFoundError("nf")]), Scripted("x", [])
    with pytest.raises(OverloadedError):
        await loop(retries_per_target=0, max_attempts=2).run(
            [target(a), target(b, kind="bedrock"), target(c, "claude-sonnet-5-5", kind="tier")],
            path="/v1/messages", headers={}, stream=False, attempts=[])
    assert c.calls == []


async def test_first_server_error_is_reported_when_every_target_fails():
    a = Scripted("anthropic", [OverloadedError("primary overloaded")])
    b = Scripted("bedrock", [InternalServerError("bedrock: internal")])
    with pytest.raises(OverloadedError) as exc:
        await loop(retries_per_target=0).run([target(a), target(b, kind="bedrock")], path="/v1/messages", headers={},
                                             stream=False, attempts=[])
    assert exc.value.message == "primary overloaded"


async def test_open_primary_circuit_and_refusing_fallback_is_a_529():
    br = CircuitBreaker(window=4, min_requests=1, failure_rate=0.5, cooldown=30)
    a = Scripted("anthropic", [UpstreamConnectionError("reset")])
    lp = loop(breaker=br, max_attempts=1)
    with pytest.raises(UpstreamConnectionError):  # the primary's circuit opens
        await lp.run([target(a)], path="/v1/messages", headers={}, stream=False, attempts=[])
    b = Scripted("bedrock", [PermissionDeniedError("bedrock: access denied")])
    atts: list = []
    with pytest.raises(OverloadedError) as exc:
        await lp.run([target(a), target(b, kind="bedrock")], path="/v1/messages", headers={}, stream=False, attempts=atts)
    assert int(exc.value.headers["retry-after"]) >= 29
    assert [x.error_type for x in atts] == ["circuit_open", "permission_error"]


async def test_single_deployment_is_not_hammered():
    """A single target failing: one retry, then the error; never more than max_attempts calls."""
    up = Scripted("a", [OverloadedError("o")] * 10)
    atts: list = []
    with pytest.raises(OverloadedError):
        await loop(max_attempts=3, retries_per_target=1).run([target(up)], path="/v1/messages", headers={}, stream=False,
                                                             attempts=atts)
    assert len(up.calls) == 2


async def test_retry_after_past_cap_falls_back_without_waiting():
    slept: list = []

    async def sleep(d):
        slept.append(d)

    a = Scripted("a", [RateLimitError("rl", headers={"retry-after": "60"})])
    b = Scripted("bedrock", [])
    atts: list = []
    lp = AttemptLoop(policy=RetryPolicy(max_retry_after=5), breaker=None, catalog=CATALOG, sleep=sleep)
    out = await lp.run([target(a), target(b, kind="bedrock")], path="/v1/messages", headers={}, stream=False, attempts=atts)
    assert out.index == 1 and slept == [] and [x.upstream for x in atts] == ["a", "bedrock"]


async def test_total_retry_time_is_capped():
    up = Scripted("a", [RateLimitError("rl", headers={"retry-after": "4"})] * 5)
    with pytest.raises(RateLimitError):
        await AttemptLoop(policy=RetryPolicy(max_retry_after=5), breaker=None, catalog=CATALOG, sleep=nosleep,
                          max_retry_time=3.0, retries_per_target=5, max_attempts=5).run(
            [target(up)], path="/v1/messages", headers={}, stream=False, attempts=[])
    assert len(up.calls) == 1


async def test_open_breaker_is_skipped_and_reported():
    br = CircuitBreaker(window=4, min_requests=2, failure_rate=0.5, cooldown=30)
    up = Scripted("a", [UpstreamConnectionError("reset")] * 10)
    lp = loop(breaker=br)
    with pytest.raises(UpstreamConnectionError):  # a call and its retry fail: 2 of 2 outcomes, the circuit opens
        await lp.run([target(up)], path="/v1/messages", headers={}, stream=False, attempts=[])
    calls = len(up.calls)
    assert calls == 2
    atts: list = []
    with pytest.raises(OverloadedError) as exc:
        await lp.run([target(up)], path="/v1/messages", headers={}, stream=False, attempts=atts)
    assert len(up.calls) == calls  # not called at all
    assert atts[0].error_type == "circuit_open" and int(exc.value.headers["retry-after"]) >= 29
    # with a fallback, the open circuit is skipped and the fallback answers
    b = Scripted("bedrock", [])
    out = await lp.run([target(up), target(b, kind="bedrock")], path="/v1/messages", headers={}, stream=False, attempts=[])
    assert out.target.upstream is b


async def test_unexpected_error_frees_the_half_open_probe_and_is_recorded():
    now = [0.0]
    br = CircuitBreaker(window=4, min_requests=1, failure_rate=0.5, cooldown=10, clock=lambda: now[0])
    up = Scripted("a", [UpstreamConnectionError("reset"), RuntimeError("adapter bug")])
    lp = loop(breaker=br, max_attempts=1)
    with pytest.raises(UpstreamConnectionError):  # the circuit opens
        await lp.run([target(up)], path="/v1/messages", headers={}, stream=False, attempts=[])
    now[0] = 11.0  # half-open: one probe, which dies of something that is not an upstream answer
    atts: list = []
    with pytest.raises(RuntimeError):
        await lp.run([target(up)], path="/v1/messages", headers={}, stream=False, attempts=atts)
    assert [a.error_type for a in atts] == ["api_error"]  # the call is in the ledger row
    # the probe slot is free again: the circuit is not stuck half-open, refusing every call
    out = await lp.run([target(up)], path="/v1/messages", headers={}, stream=False, attempts=[])
    assert out.resp.status == 200 and br.state(target(up).key) == "closed"


async def test_stream_retried_only_before_first_byte():
    up = Scripted("a", ["stream-error", "stream-empty", "stream"])
    atts: list = []
    out = await loop(max_attempts=3, retries_per_target=2).run([target(up)], path="/v1/messages", headers={}, stream=True,
                                                               attempts=atts)
    assert out.first and b"message_start" in out.first and out.meter is not None
    assert [a.status for a in atts] == [529, 502, 200]


def test_chain_from_config_respects_pool_and_routing():
    from tierwise.dispatch import Dispatcher

    s = load_settings(None, environ={})
    d = Dispatcher(s)

    class Bed:
        name = "bedrock"

        def supports(self, m):
            return m == "claude-haiku-5-5"

    body = {"model": "tierwise/classify_intent", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    plan = d.plan(body)
    prim = Scripted("anthropic", [])
    chain = build_chain(plan, body, orjson.dumps(body), primary=prim, peers={"bedrock": Bed()}, catalog=s.catalog,
                        fallbacks={"fast": ["bedrock", "next_tier"]})
    assert [(t.upstream.name, t.model_id, t.kind) for t in chain] == [
        ("anthropic", "claude-haiku-5-5", "primary"), ("bedrock", "claude-haiku-5-5", "bedrock"),
        ("anthropic", "claude-sonnet-5-5", "tier")]
    # a key limited to fast never escalates
    chain = build_chain(plan, body, orjson.dumps(body), primary=prim, catalog=s.catalog,
                        fallbacks={"*": ["next_tier"]}, allowed=lambda t: t == "fast")
    assert len(chain) == 1
    # an explicit model is only ever answered by that model
    body2 = {"model": "claude-haiku-5-5", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    plan2 = d.plan(body2)
    chain = build_chain(plan2, body2, orjson.dumps(body2), primary=prim, peers={"bedrock": Bed()}, catalog=s.catalog,
                        fallbacks={"*": ["next_tier", "bedrock"]})
    assert [t.model_id for t in chain] == ["claude-haiku-5-5", "claude-haiku-5-5"]
