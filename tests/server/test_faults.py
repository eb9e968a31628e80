"""Fault injection through the real proxy against the local fake upstream (and a fake Bedrock)."""

from __future__ import annotations

import time

import httpx2
import orjson
import pytest

from tierwise.upstream.fakeserver import FakeAnthropic

from .test_sdk_end_to_end import ledger_rows

H = {"x-api-key": "sk-client", "anthropic-version": "2023-06-01"}
BODY = {"model": "claude-haiku-5-5", "max_tokens": 40, "messages": [{"role": "user", "content": "Classify: refund please"}]}


def post(proxy, fault=None, stream=False, timeout=10.0, **extra):
    headers = dict(H, **({"x-tierwise-fault": fault} if fault else {}), **extra)
    return httpx2.post(proxy.url + "/v1/messages", json=dict(BODY, stream=stream), headers=headers, timeout=timeout)


def attempts(row):
    return orjson.loads(row["attempts"]) if row["attempts"] else []


def test_429_with_retry_after_is_honoured(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url)
    r = post(proxy, "status=429,retry_after=0.2,times=1")
    assert r.status_code == 200 and r.headers["x-tierwise-attempts"] == "2" and r.headers["x-tierwise-fallbacks"] == "0"
    row = ledger_rows(proxy)[-1]
    a = attempts(row)
    assert [x["status"] for x in a] == [429, 200] and a[0]["error_type"] == "rate_limit_error"
    assert set(a[0]) == {"model", "upstream", "status", "error_type", "latency_ms", "cost_nanos"}
    assert row["cost_nanos"] == a[1]["cost_nanos"] > 0
    # a retry-after past the cap goes straight back to the client with its retry-after
    r = post(proxy, "status=429,retry_after=30")
    assert r.status_code == 429 and r.headers["retry-after"] == "30.0" and r.headers["x-tierwise-attempts"] == "1"
    assert r.json()["error"]["type"] == "rate_limit_error"


def test_burst_of_529_then_500(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url, resilience={"retries_per_target": 2, "backoff_base": 0.01, "breaker": {"enabled": False}})
    r = post(proxy, "status=529,times=2")
    assert r.status_code == 200 and r.headers["x-tierwise-attempts"] == "3"
    r = post(proxy, "status=500,times=1")
    assert r.status_code == 200 and r.headers["x-tierwise-attempts"] == "2"
    # a sustained outage: at most max_attempts calls, then a well-formed 529
    n = len(fake_anthropic.requests)
    r = post(proxy, "status=529")
    assert r.status_code == 529 and r.json()["type"] == "error" and r.json()["error"]["type"] == "overloaded_error"
    assert len(fake_anthropic.requests) - n == 3


def test_single_deployment_default_and_breaker(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url, resilience={"backoff_base": 0.01, "breaker": {"min_requests": 4, "cooldown": 60.0}})
    n = len(fake_anthropic.requests)
    assert post(proxy, "status=529").status_code == 529
    assert len(fake_anthropic.requests) - n == 2  # default: one retry, not three failed attempts
    assert post(proxy, "status=503").status_code == 503  # 4 failures of 4: the circuit opens
    n = len(fake_anthropic.requests)
    r = post(proxy)  # a healthy request now fails fast, without reaching the upstream
    assert r.status_code == 529 and "circuit open" in r.json()["error"]["message"] and int(r.headers["retry-after"]) > 50
    assert len(fake_anthropic.requests) == n
    row = ledger_rows(proxy)[-1]
    assert attempts(row)[0]["error_type"] == "circuit_open"


def test_timeout_then_success(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url, upstream={"timeout": 0.3})
    r = post(proxy, "delay=1,times=1")
    assert r.status_code == 200 and r.headers["x-tierwise-attempts"] == "2"
    a = attempts(ledger_rows(proxy)[-1])
    assert a[0]["status"] == 504 and a[0]["error_type"] == "timeout_error"
    r = post(proxy, "delay=1")
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"


@pytest.mark.parametrize("stream", [False, True])
def test_reset_before_first_byte_is_retried(fake_anthropic, proxy_factory, stream):
    proxy = proxy_factory(fake_anthropic.url)
    fault = "cut=0,times=1" if stream else "reset,times=1"
    r = post(proxy, fault, stream=stream)
    assert r.status_code == 200 and r.headers["x-tierwise-attempts"] == "2"
    if stream:
        assert r.text.count("event: message_start") == 1 and "event: message_stop" in r.text
    row = ledger_rows(proxy)[-1]
    assert row["status"] == 200 and attempts(row)[0]["status"] == 502


def test_error_event_before_first_byte_is_retried(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url)
    r = post(proxy, "error_event=0,times=1", stream=True)
    assert r.status_code == 200 and "event: error" not in r.text and "message_stop" in r.text
    assert r.headers["x-tierwise-attempts"] == "2"


def test_cut_mid_stream_is_never_replayed(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url)
    n = len(fake_anthropic.requests)
    r = post(proxy, "cut=5", stream=True)
    assert len(fake_anthropic.requests) - n == 1
    assert r.text.count("event: message_start") == 1
    assert r.text.rstrip().split("\n\n")[-1].startswith("event: error\ndata: ")
    err = orjson.loads(r.text.rstrip().split("\n\n")[-1].split("data: ", 1)[1])
    assert err["type"] == "error" and err["error"]["type"] == "api_error"
    row = ledger_rows(proxy)[-1]
    assert row["status"] == 502 and row["input_tokens"] > 0 and row["cost_nanos"] > 0  # what was billed is counted


def test_error_event_mid_stream_passes_through(proxy_factory):
    # a paced upstream: the stream has surely reached the client before the error event comes
    with FakeAnthropic(latency_scale=5.0) as paced:
        proxy = proxy_factory(paced.url)
        r = post(proxy, "error_event=6", stream=True)
    assert "event: error" in r.text and "overloaded_error" in r.text
    row = ledger_rows(proxy)[-1]
    assert row["status"] == 529 and row["error_type"] == "overloaded_error"


def test_malformed_sse_does_not_break_accounting(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url)
    r = post(proxy, "malformed", stream=True)
    assert r.status_code == 200 and "{not json" in r.text and "message_stop" in r.text
    row = ledger_rows(proxy)[-1]
    assert row["status"] == 200 and row["output_tokens"] > 1


@pytest.fixture
def slow_fake():
    with FakeAnthropic(latency_scale=30.0) as fake:
        yield fake


def test_client_disconnects_mid_stream(slow_fake, proxy_factory):
    proxy = proxy_factory(slow_fake.url)
    with httpx2.Client(timeout=10) as c:
        with c.stream("POST", proxy.url + "/v1/messages", json=dict(BODY, stream=True), headers=H) as r:
            for chunk in r.iter_bytes():
                if b"content_block_delta" in chunk:
                    break
    row = ledger_rows(proxy, 1)[-1]
    assert row["client_disconnected"] and row["status"] == 499
    time.sleep(0.3)
    assert slow_fake.usage == []  # the upstream never finished the answer: its stream was dropped


def test_client_disconnects_while_waiting(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url)
    with pytest.raises(httpx2.TimeoutException):
        post(proxy, "delay=2", timeout=0.3)
    row = ledger_rows(proxy, 1)[-1]
    assert row["client_disconnected"] and row["status"] == 499
    assert attempts(row)[-1]["error_type"] == "client_disconnected"


def test_fallback_to_bedrock_then_next_tier(fake_anthropic, proxy_factory, monkeypatch):
    pytest.importorskip("botocore")
    from ..upstream.test_bedrock import FakeBedrock

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    with FakeBedrock() as fb:
        proxy = proxy_factory(fake_anthropic.url, resilience={
            "fallbacks": {"fast": ["bedrock", "next_tier"]}, "retries_per_target": 0,
            "bedrock": {"enabled": True, "endpoint_url": fb.url}})
        body = dict(BODY, model="tierwise/classify_intent")
        r = httpx2.post(proxy.url + "/v1/messages", json=body, headers=dict(H, **{"x-tierwise-fault": "status=529"}), timeout=10)
        assert r.status_code == 200 and r.headers["x-tierwise-upstream"] == "bedrock"
        assert r.headers["x-tierwise-fallbacks"] == "1" and r.json()["model"] == "claude-haiku-5-5"
        r = httpx2.post(proxy.url + "/v1/messages", json=dict(body, stream=True), timeout=10, headers=dict(
            H, **{"x-tierwise-fault": "status=529,times=1", "x-tierwise-bedrock-fault": "status=503"}))
        assert r.status_code == 200 and r.headers["x-tierwise-model"] == "claude-sonnet-5-5"
        assert r.headers["x-tierwise-tier"] == "balanced" and r.headers["x-tierwise-fallbacks"] == "2"
        rows = ledger_rows(proxy, 2)
        assert rows[0]["upstream"] == "bedrock" and rows[0]["fallbacks"] == 1
        a = attempts(rows[1])
        assert [(x["upstream"], x["model"], x["status"]) for x in a] == [
            ("anthropic", "claude-haiku-5-5", 529), ("bedrock", "claude-haiku-5-5", 529), ("anthropic", "claude-sonnet-5-5", 200)]
        assert rows[1]["model"] == "claude-sonnet-5-5" and rows[1]["escalations"] == 1


@pytest.mark.parametrize("refusal", [403, 404, 400])
def test_bedrock_refusal_does_not_mask_the_primary_529(fake_anthropic, proxy_factory, monkeypatch, refusal):
    """Anthropic overloaded, Bedrock refuses for its own reasons: the client gets the 529, both attempts are listed."""
    pytest.importorskip("botocore")
    from ..upstream.test_bedrock import FakeBedrock

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    with FakeBedrock() as fb:
        proxy = proxy_factory(fake_anthropic.url, resilience={
            "fallbacks": {"fast": ["bedrock"]}, "retries_per_target": 0, "bedrock": {"enabled": True, "endpoint_url": fb.url}})
        r = httpx2.post(proxy.url + "/v1/messages", json=dict(BODY, model="tierwise/classify_intent"), timeout=10,
                        headers=dict(H, **{"x-tierwise-fault": "status=529", "x-tierwise-bedrock-fault": f"status={refusal}"}))
        assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
        assert r.headers["x-tierwise-attempts"] == "2" and r.headers["x-tierwise-fallbacks"] == "1"
        assert r.headers["x-tierwise-upstream"] == "anthropic"  # the upstream whose error this is
        assert len(fb.requests) == 1
        row = ledger_rows(proxy, 1)[-1]
        assert row["status"] == 529 and row["error_type"] == "overloaded_error" and row["upstream"] == "anthropic"
        assert [(x["upstream"], x["status"]) for x in attempts(row)] == [("anthropic", 529), ("bedrock", refusal)]
