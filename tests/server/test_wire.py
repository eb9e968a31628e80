"""The proxy's wire, both ways: content encodings from the upstream, headers on success and error,
the client's headers and query string forwarded, one retry budget for tierwise and the SDK, no self-loop."""

from __future__ import annotations

import anthropic
import httpx2
import orjson
import pytest

from tests.conftest import RunningProxy, free_port, make_settings
from tests.server.test_sdk_end_to_end import ledger_rows
from tierwise.server import create_app
from tierwise.upstream.fakeserver import FakeAnthropic

KEY = {"x-api-key": "sk-client", "anthropic-version": "2023-06-01"}
BODY = {"model": "claude-haiku-5-5", "max_tokens": 40, "messages": [{"role": "user", "content": "Say hello in one line."}]}


def post(proxy, body=BODY, headers=None, path="/v1/messages"):
    with httpx2.Client(base_url=proxy.url, timeout=30) as c:
        return c.post(path, content=orjson.dumps(body), headers={**KEY, **(headers or {})})


@pytest.fixture
def gz():
    with FakeAnthropic() as fake:
        yield fake


@pytest.mark.parametrize("enc", ["gzip", "deflate", "br", "zstd"])
def test_compressing_upstream_json_stream_and_errors(proxy_factory, enc):
    with FakeAnthropic() as fake:
        # the proxy advertises what it decodes; force one encoding per run by what the fake offers
        import tierwise.upstream.fakeserver as fs

        orig = fs.choose
        fs.choose = lambda accept, offered=None: orig(accept, (enc,))
        try:
            proxy = proxy_factory(fake.url)
            r = post(proxy)
            assert r.status_code == 200, r.text
            assert r.json()["type"] == "message"  # decodable JSON, labelled as such
            assert "content-encoding" not in r.headers  # decoded bytes, no header claiming otherwise
            assert float(r.headers["x-tierwise-cost-usd"]) > 0  # usage read from decoded bytes
            with httpx2.Client(base_url=proxy.url, timeout=30) as c:
                with c.stream("POST", "/v1/messages", content=orjson.dumps(dict(BODY, stream=True)), headers=KEY) as s:
                    text = b"".join(s.iter_raw())
            assert s.headers.get("content-encoding") is None
            assert b"event: message_stop" in text and b"event: error" not in text
            bad = post(proxy, dict(BODY, model="claude-sonnet-5-5", temperature=0.3))  # refused by the (fake) API
            assert bad.status_code == 400
            err = bad.json()
            assert err["error"]["message"].startswith("temperature:"), err  # the upstream's words, not bytes
        finally:
            fs.choose = orig
        assert fake.encodings and set(fake.encodings) == {enc}
        accepted = fake.requests[-1][1]["accept-encoding"]
        assert enc in accepted


def test_streams_are_metered_from_decoded_bytes(proxy_factory, gz):
    proxy = proxy_factory(gz.url)
    with httpx2.Client(base_url=proxy.url, timeout=30) as c:
        with c.stream("POST", "/v1/messages", content=orjson.dumps(dict(BODY, stream=True)), headers=KEY) as s:
            for _ in s.iter_raw():
                pass
    assert gz.encodings[-1] == "gzip"
    row = ledger_rows(proxy, 1)[-1]
    assert row["status"] == 200 and row["output_tokens"] > 0 and row["cost_nanos"] > 0


def test_success_headers_reach_the_client(proxy_factory, gz):
    proxy = proxy_factory(gz.url)
    r = post(proxy)
    assert r.headers["request-id"].startswith("req_fake")
    assert r.headers["x-tierwise-request-id"].startswith("req_tw_")
    assert "anthropic-ratelimit-output-tokens-reset" in r.headers


@pytest.mark.parametrize("status", [429, 500, 529])
def test_upstream_error_reaches_the_client_as_sent(proxy_factory, gz, status):
    proxy = proxy_factory(gz.url, resilience={"max_attempts": 1})
    r = post(proxy, headers={"x-tierwise-fault": f"status={status}"})
    assert r.status_code == status
    rid = r.headers["request-id"]
    assert rid.startswith("req_fake"), rid  # the upstream's id, not tierwise's
    assert r.json()["request_id"] == rid  # the body as the upstream sent it
    assert r.headers["x-tierwise-request-id"].startswith("req_tw_")
    assert "anthropic-ratelimit-requests-remaining" in r.headers
    if status == 429:
        assert r.headers["retry-after"]


def test_tierwise_own_errors_carry_request_id(proxy_factory):
    proxy = proxy_factory()
    with httpx2.Client(base_url=proxy.url, timeout=30) as c:
        r = c.post("/v1/messages", content=b"{not json", headers=KEY)
    assert r.status_code == 400
    assert r.headers["request-id"] == r.headers["x-tierwise-request-id"] == r.json()["request_id"]
    with httpx2.Client(base_url=proxy.url, timeout=30) as c:
        nf = c.get("/v1/nowhere", headers=KEY)
    assert nf.status_code == 404 and nf.headers["request-id"] == nf.json()["request_id"]


def test_sdk_sees_request_id_on_errors(proxy_factory, gz):
    proxy = proxy_factory(gz.url)
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-client", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as ei:
        client.messages.create(model="claude-opus-5-5", max_tokens=10, messages=[
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}])  # prefill: refused upstream
    assert ei.value.request_id and ei.value.request_id.startswith("req_fake")
    with pytest.raises(anthropic.BadRequestError) as ei:
        client.messages.create(model="tierwise/no-such-task", max_tokens=10,  # refused by tierwise itself
                               messages=[{"role": "user", "content": "hi"}])
    assert ei.value.request_id and ei.value.request_id.startswith("req_tw_")


def test_count_tokens_returns_upstream_request_id_and_query(proxy_factory, gz):
    proxy = proxy_factory(gz.url)
    r = post(proxy, {"model": "claude-haiku-5-5", "messages": [{"role": "user", "content": "count me"}]},
             path="/v1/messages/count_tokens?beta=true")
    assert r.status_code == 200 and r.json()["input_tokens"] > 0
    assert r.headers["request-id"].startswith("req_fake") and r.headers["x-tierwise-request-id"].startswith("req_tw_")
    assert gz.requests[-1][0] == "/v1/messages/count_tokens?beta=true"


def test_client_headers_and_query_are_forwarded(proxy_factory, gz):
    proxy = proxy_factory(gz.url)
    r = post(proxy, path="/v1/messages?beta=true", headers={
        "user-agent": "claude-cli/2.1.0 (external, cli)", "x-app": "cli", "x-claude-code-session-id": "sess-42",
        "anthropic-dangerous-direct-browser-access": "true", "anthropic-beta": "claude-code-20250219",
        "x-stainless-lang": "js", "proxy-authorization": "Basic c2VjcmV0", "te": "trailers",
        "x-tierwise-task": "draft_email", "connection": "keep-alive, x-secret-hop", "x-secret-hop": "1"})
    assert r.status_code == 200, r.text
    path, hdrs, _ = gz.requests[-1]
    assert path == "/v1/messages?beta=true"
    assert hdrs["user-agent"] == "claude-cli/2.1.0 (external, cli)"
    for h, v in (("x-app", "cli"), ("x-claude-code-session-id", "sess-42"), ("anthropic-dangerous-direct-browser-access", "true"),
                 ("anthropic-beta", "claude-code-20250219"), ("x-stainless-lang", "js"), ("x-api-key", "sk-client")):
        assert hdrs.get(h) == v, h
    for h in ("proxy-authorization", "te", "x-tierwise-task", "x-secret-hop"):
        assert h not in hdrs, h
    assert hdrs["x-tierwise-hop"]


def test_server_key_replaces_the_clients_auth(proxy_factory, gz, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-server")
    proxy = proxy_factory(gz.url)
    r = post(proxy, headers={"authorization": "Bearer sk-client-bearer"})
    assert r.status_code == 200
    hdrs = gz.requests[-1][1]
    assert hdrs["x-api-key"] == "sk-server" and "authorization" not in hdrs


def test_one_sdk_call_costs_at_most_max_attempts_upstream_calls(proxy_factory, gz):
    """tierwise retries a 529 once; the SDK (default 2 retries) must not start it over: <= max_attempts in all."""
    proxy = proxy_factory(gz.url, resilience={"backoff_base": 0.01, "backoff_max": 0.02,
                                              "breaker": {"enabled": False}})
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-client")  # default settings: 2 retries
    before = len(gz.requests)
    with pytest.raises(anthropic.APIStatusError) as ei:
        client.messages.create(**BODY, extra_headers={"x-tierwise-fault": "status=529"})
    assert ei.value.status_code == 529
    calls = len(gz.requests) - before
    assert calls <= proxy.state.settings.raw["resilience"]["max_attempts"], calls
    assert ei.value.response.headers["x-should-retry"] == "false"


def test_sdk_retries_what_tierwise_did_not_and_the_budget_holds(proxy_factory, gz):
    """tierwise without retries of its own: the SDK retries, and the x-stainless-retry-count budget stops it."""
    proxy = proxy_factory(gz.url, resilience={"retries_per_target": 0, "breaker": {"enabled": False}})
    r = post(proxy, headers={"x-tierwise-fault": "status=529"})
    assert r.status_code == 529 and r.headers.get("x-should-retry") != "false"  # one call: the SDK may retry
    r = post(proxy, headers={"x-tierwise-fault": "status=529", "x-stainless-retry-count": "2"})
    assert r.headers["x-should-retry"] == "false"  # the third attempt of the logical call: budget spent
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-client")  # default retry settings
    before = len(gz.requests)
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(**BODY, extra_headers={"x-tierwise-fault": "status=529"})
    assert len(gz.requests) - before == 3  # one per SDK attempt, no more


def test_budget_shrinks_with_the_clients_retry_count(proxy_factory, gz):
    proxy = proxy_factory(gz.url, resilience={"backoff_base": 0.01, "backoff_max": 0.02, "breaker": {"enabled": False}})
    before = len(gz.requests)
    r = post(proxy, headers={"x-tierwise-fault": "status=529", "x-stainless-retry-count": "2"})
    assert len(gz.requests) - before == 1 and r.headers["x-should-retry"] == "false"


def test_a_proxy_pointed_at_itself_answers_508_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    port = free_port()
    s = make_settings(tmp_path, upstream={"kind": "anthropic", "url": f"http://127.0.0.1:{port}"})
    with RunningProxy(create_app(s), port) as proxy:
        r = post(proxy)
        assert r.status_code == 508, r.text
        err = r.json()
        assert err["type"] == "error" and err["error"]["type"] == "api_error"
        assert "loop" in err["error"]["message"] and "TIERWISE_UPSTREAM_URL" in err["error"]["message"]
        assert r.headers["x-should-retry"] == "false"
        rows = ledger_rows(proxy, 1)
        assert len(rows) == 1  # the inner hop is refused before it routes: one row, not one per hop
        assert rows[0]["status"] == 508
        with httpx2.Client(base_url=proxy.url, timeout=30, headers=KEY) as c:  # every forwarded path
            counted = c.post("/v1/messages/count_tokens", content=orjson.dumps({"model": "claude-haiku-5-5",
                             "messages": [{"role": "user", "content": "x"}]}))
            batches = c.get("/v1/messages/batches")
        assert counted.status_code == 508 and batches.status_code == 508, (counted.text, batches.text)
