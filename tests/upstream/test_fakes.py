"""The fakes behave like the real API where a client can see it (shared/reference/claude-platform.md):
compression when asked, request-id / rate-limit / retry-after headers, the API's refusals, 1-hour
cache writes, GET /v1/models/{id}. Both fakes: the in-process offline upstream and the HTTP fake."""

from __future__ import annotations

import gzip
import re
import zlib

import httpx2
import orjson
import pytest

from tierwise.errors import InvalidRequestError, RateLimitError
from tierwise.upstream import apirules
from tierwise.upstream.encoding import Encoder, choose
from tierwise.upstream.fakeserver import FakeAnthropic
from tierwise.upstream.offline import OfflineUpstream
from tierwise.upstream.sse import StreamMeter

KEY = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
BODY = {"model": "claude-haiku-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hello there"}]}


def _decode(enc: str | None, data: bytes) -> bytes:
    if enc is None:
        return data
    if enc == "gzip":
        return gzip.decompress(data)
    if enc == "deflate":
        return zlib.decompress(data)
    if enc == "br":
        import brotli

        return brotli.decompress(data)
    from backports import zstd

    return zstd.ZstdDecompressor().decompress(data)


@pytest.fixture(scope="module")
def fake():
    with FakeAnthropic() as f:
        yield f


def _post(fake, body=BODY, headers=None, path="/v1/messages", accept="identity"):
    with httpx2.Client(base_url=fake.url, timeout=10) as c:
        # the raw bytes: what the fake sent on the wire
        with c.stream("POST", path, content=orjson.dumps(body),
                      headers={**KEY, "accept-encoding": accept, **(headers or {})}) as r:
            raw = _decode(r.headers.get("content-encoding"), b"".join(r.iter_raw()))
    return r, raw


@pytest.mark.parametrize("enc", ["gzip", "deflate", "br", "zstd"])
def test_http_fake_compresses_json_and_streams_when_asked(fake, enc):
    with httpx2.Client(base_url=fake.url, timeout=10) as c:
        with c.stream("POST", "/v1/messages", content=orjson.dumps(BODY), headers={**KEY, "accept-encoding": enc}) as r:
            raw = b"".join(r.iter_raw())
        assert r.status_code == 200 and r.headers["content-encoding"] == enc
        msg = orjson.loads(_decode(enc, raw))
        assert msg["type"] == "message" and msg["usage"]["input_tokens"] > 0
        with c.stream("POST", "/v1/messages", content=orjson.dumps(dict(BODY, stream=True)),
                      headers={**KEY, "accept-encoding": enc}) as r:
            raw = b"".join(r.iter_raw())
        assert r.headers["content-encoding"] == enc
        text = _decode(enc, raw)
        meter = StreamMeter()
        meter.feed(text)
        assert meter.completed and meter.usage.output_tokens > 0
        # errors are compressed too
        with c.stream("POST", "/v1/messages", content=b"{}", headers={**KEY, "accept-encoding": enc}) as r:
            raw = b"".join(r.iter_raw())
        assert r.status_code == 400 and r.headers["content-encoding"] == enc
        assert orjson.loads(_decode(enc, raw))["error"]["type"] == "invalid_request_error"


def test_http_fake_identity_when_not_asked_or_turned_off(fake):
    with httpx2.Client(base_url=fake.url, timeout=10) as c:
        with c.stream("POST", "/v1/messages", content=orjson.dumps(BODY), headers={**KEY, "accept-encoding": "identity"}) as r:
            raw = b"".join(r.iter_raw())
    assert "content-encoding" not in r.headers and orjson.loads(raw)["type"] == "message"
    with FakeAnthropic(compress=False) as plain, httpx2.Client(base_url=plain.url, timeout=10) as c:
        with c.stream("POST", "/v1/messages", content=orjson.dumps(BODY), headers={**KEY, "accept-encoding": "gzip"}) as r:
            raw = b"".join(r.iter_raw())
        assert "content-encoding" not in r.headers and orjson.loads(raw)["type"] == "message"
        assert plain.encodings == [None]


def test_stream_is_flushed_per_event_when_compressed():
    """Each compressed write decodes on its own: a client sees every event as it is sent."""
    enc = Encoder("gzip")
    d = zlib.decompressobj(31)
    for event in (b"event: ping\ndata: {}\n\n", b"event: message_stop\ndata: {}\n\n"):
        assert d.decompress(enc.chunk(event)) == event
    d.decompress(enc.end())
    assert d.eof


def test_accept_encoding_choice():
    assert choose("gzip, deflate, br, zstd") == "gzip"
    assert choose("br;q=1.0, gzip;q=0.5") == "br"
    assert choose("gzip;q=0, deflate") == "deflate"
    assert choose("identity") is None and choose(None) is None and choose("compress") is None


def test_request_id_and_ratelimit_headers_on_success_and_errors(fake):
    ids = set()
    for body, status in ((BODY, 200), (dict(BODY, stream=True), 200), ({"model": "x"}, 400)):
        r, raw = _post(fake, body)
        assert r.status_code == status
        rid = r.headers["request-id"]
        assert re.fullmatch(r"req_[0-9A-Za-z_]{16,}", rid)
        ids.add(rid)
        for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
            for what in ("limit", "remaining", "reset"):
                assert f"anthropic-ratelimit-{kind}-{what}" in r.headers
        if status >= 400:
            assert orjson.loads(raw)["request_id"] == rid  # the body names the same id as the header
    assert len(ids) == 3  # one per answer


def test_429_carries_retry_after_and_ratelimit_headers(fake):
    r, raw = _post(fake, headers={"x-tierwise-fault": "status=429"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["anthropic-ratelimit-requests-limit"] and orjson.loads(raw)["error"]["type"] == "rate_limit_error"
    r, _ = _post(fake, headers={"x-tierwise-fault": "status=429,retry_after=7"})
    assert r.headers["retry-after"] == "7.0"


async def test_offline_upstream_sends_the_same_headers():
    up = OfflineUpstream(latency_scale=0)
    a = await up.send("/v1/messages", orjson.dumps(BODY), headers=KEY, stream=False)
    b = await up.send("/v1/messages", orjson.dumps(BODY), headers=KEY, stream=False)
    assert a.headers["request-id"].startswith("req_") and a.headers["request-id"] != b.headers["request-id"]
    assert "anthropic-ratelimit-tokens-remaining" in a.headers
    with pytest.raises(RateLimitError) as ei:
        await up.send("/v1/messages", orjson.dumps(BODY), headers={**KEY, "x-tierwise-fault": "status=429"}, stream=False)
    assert ei.value.headers["retry-after"] and ei.value.headers["request-id"].startswith("req_")
    assert orjson.loads(ei.value.body)["request_id"] == ei.value.headers["request-id"]


SYSTEM_TURN = {"model": "claude-sonnet-5-5", "max_tokens": 50, "messages": [
    {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
    {"role": "system", "content": "Answer in French from now on."}, {"role": "user", "content": "and now?"}]}


def test_mid_conversation_system_needs_its_beta(fake):
    r, raw = _post(fake, SYSTEM_TURN)
    err = orjson.loads(raw)["error"]
    assert r.status_code == 400 and err["type"] == "invalid_request_error"
    # what Claude Code keys its retry on
    assert "Unexpected role" in err["message"] and "input message role" in err["message"]
    r, _ = _post(fake, SYSTEM_TURN, headers={"anthropic-beta": "claude-code-20250219, mid-conversation-system-2026-04-07"})
    assert r.status_code == 200


async def test_offline_refuses_system_turn_without_beta():
    up = OfflineUpstream(latency_scale=0)
    with pytest.raises(InvalidRequestError, match="Unexpected role"):
        await up.send("/v1/messages", orjson.dumps(SYSTEM_TURN), headers=KEY, stream=True)
    with pytest.raises(InvalidRequestError, match="Unexpected role"):
        await up.send("/v1/messages/count_tokens", orjson.dumps(SYSTEM_TURN), headers=KEY, stream=False)
    ok = await up.send("/v1/messages?beta=true", orjson.dumps(SYSTEM_TURN), stream=False,
                       headers={**KEY, "anthropic-beta": apirules.MID_CONVERSATION_SYSTEM_BETA})
    assert ok.json()["type"] == "message"


async def test_offline_accepts_system_turn_under_per_turn_control():
    """Observed: Claude Code 2.1.332 opens each session with a "system" entry in ``messages`` under beta
    per-turn-control-2026-07-01 alone (no mid-conversation-system beta)."""
    up = OfflineUpstream(latency_scale=0)
    betas = "claude-code-20250219,interleaved-thinking-2025-05-14,per-turn-control-2026-07-01"
    ok = await up.send("/v1/messages?beta=true", orjson.dumps(SYSTEM_TURN), stream=False,
                       headers={**KEY, "anthropic-beta": betas})
    assert ok.json()["type"] == "message"
    with pytest.raises(InvalidRequestError, match="Unexpected role"):
        await up.send("/v1/messages?beta=true", orjson.dumps(SYSTEM_TURN), stream=False,
                      headers={**KEY, "anthropic-beta": "claude-code-20250219"})


@pytest.mark.parametrize("model,refused", [("claude-haiku-5-5", True), ("claude-sonnet-5-5", True), ("claude-opus-5-5", True),
                                           ("claude-sonnet-4-6", False), ("claude-opus-5", False)])
def test_prefill_refused_on_the_5_5_models(fake, model, refused):
    body = {"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "Name a colour."},
                                                           {"role": "assistant", "content": "The colour is"}]}
    r, raw = _post(fake, body)
    if refused:
        assert r.status_code == 400 and orjson.loads(raw)["error"]["message"] == apirules.PREFILL_REFUSED
    else:
        assert r.status_code == 200


@pytest.mark.parametrize("model,extra,status", [
    ("claude-sonnet-5-5", {"temperature": 0.2}, 400),
    ("claude-sonnet-5", {"top_p": 0.9}, 400),
    ("claude-haiku-5-5", {"top_k": 5}, 400),
    ("claude-sonnet-5-5", {"temperature": 1}, 200),            # the default is accepted
    ("claude-sonnet-4-6", {"temperature": 0.2}, 200),
    ("claude-opus-5-5", {"thinking": {"type": "enabled", "budget_tokens": 2000}}, 400),
    ("claude-sonnet-4-6", {"thinking": {"type": "enabled", "budget_tokens": 2000}}, 200),
    ("claude-opus-5-5", {"thinking": {"type": "disabled"}}, 400),
    ("claude-haiku-5-5", {"thinking": {"type": "disabled"}}, 200),
    ("claude-sonnet-5-5", {"tool_choice": {"type": "tool", "name": "t"}}, 400),
    ("claude-opus-5-5", {"tool_choice": {"type": "tool", "name": "t"}}, 200),
])
def test_model_refusals_from_the_reference(fake, model, extra, status):
    body = dict(BODY, model=model, **extra)
    if "tool_choice" in extra:
        body["tools"] = [{"name": "t", "description": "d", "input_schema": {"type": "object", "properties": {}}}]
    r, raw = _post(fake, body)
    assert r.status_code == status, raw
    if status == 400:
        assert orjson.loads(raw)["error"]["type"] == "invalid_request_error"


def test_one_hour_cache_write_is_reported_as_1h():
    up = OfflineUpstream(latency_scale=0)
    big = "policy text " * 400

    def body(ttl):
        cc = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
        return {"model": "claude-sonnet-5-5", "max_tokens": 20, "system": [{"type": "text", "text": big + (ttl or "5m"),
                "cache_control": cc}], "messages": [{"role": "user", "content": "q"}]}

    import asyncio

    async def usage(b):
        return (await up.send("/v1/messages", orjson.dumps(b), headers=KEY, stream=False)).json()["usage"]

    u1 = asyncio.run(usage(body("1h")))
    assert u1["cache_creation_input_tokens"] > 0
    assert u1["cache_creation"] == {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": u1["cache_creation_input_tokens"]}
    u5 = asyncio.run(usage(body(None)))
    assert u5["cache_creation"] == {"ephemeral_5m_input_tokens": u5["cache_creation_input_tokens"], "ephemeral_1h_input_tokens": 0}
    again = asyncio.run(usage(body("1h")))  # the same prefix again: a read, no write
    assert again["cache_read_input_tokens"] > 0 and again["cache_creation"]["ephemeral_1h_input_tokens"] == 0


def test_one_hour_cache_write_over_http(fake):
    body = {"model": "claude-haiku-5-5", "max_tokens": 20, "system": [
        {"type": "text", "text": "handbook " * 500 + "http", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [{"role": "user", "content": "q"}]}
    r, raw = _post(fake, body)
    usage = orjson.loads(raw)["usage"]
    assert usage["cache_creation"]["ephemeral_1h_input_tokens"] == usage["cache_creation_input_tokens"] > 0


def test_models_list_and_get_one(fake):
    with httpx2.Client(base_url=fake.url, timeout=10, headers=KEY) as c:
        listing = c.get("/v1/models").json()
        ids = [m["id"] for m in listing["data"]]
        assert "claude-sonnet-5-5" in ids and listing["first_id"] == ids[0]
        one = c.get("/v1/models/claude-sonnet-5-5")
        assert one.status_code == 200 and one.headers["request-id"].startswith("req_")
        assert one.json()["type"] == "model" and one.json()["id"] == "claude-sonnet-5-5"
        missing = c.get("/v1/models/claude-nope-1")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
        assert c.get("/v1/models/claude-sonnet-5-5", headers={"x-api-key": ""}).status_code == 401


def test_fake_records_the_query_string(fake):
    _post(fake, path="/v1/messages?beta=true")
    assert fake.requests[-1][0] == "/v1/messages?beta=true"
