"""Bad input gets a clear 4xx in Anthropic's error JSON, and the ledger still records it."""

from __future__ import annotations

import httpx2
import pytest

H = {"x-api-key": "k", "anthropic-version": "2023-06-01", "content-type": "application/json"}


@pytest.fixture
def proxy(proxy_factory):
    return proxy_factory(server={"max_body_bytes": 10_000})


def post(proxy, content, headers=H, path="/v1/messages"):
    with httpx2.Client() as c:
        return c.post(proxy.url + path, content=content, headers=headers)


@pytest.mark.parametrize("content, status, kind, text", [
    (b"{not json", 400, "invalid_request_error", "not valid JSON"),
    (b"[1, 2]", 400, "invalid_request_error", "must be a JSON object"),
    (b'{"model": "auto", "messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request_error", "max_tokens: field required"),
    (b'{"model": "auto", "max_tokens": 5}', 400, "invalid_request_error", "messages: field required"),
    (b'{"model": "auto", "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request_error", "positive integer"),
    (b'{"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request_error", "model: field required"),
    (b'{"model": "tierwise/Bad Name", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request_error", "not a valid name"),
    (b'{"model": "claude-nope-1", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}', 404, "not_found_error", "not in the tierwise catalog"),
    (b'{"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "' + b"x" * 20_000 + b'"}]}', 413, "request_too_large", "exceeds the limit"),
])
def test_bad_requests(proxy, content, status, kind, text):
    r = post(proxy, content)
    assert r.status_code == status
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == kind and text in body["error"]["message"]
    assert body["request_id"] == r.headers["x-tierwise-request-id"]
    assert "Traceback" not in r.text


def test_unroutable_request_is_a_clear_400(proxy):
    r = post(proxy, b'{"model": "tierwise/review_code", "max_tokens": 5, "tool_choice": {"type": "any"},'
                    b' "tools": [{"name": "t", "input_schema": {"type": "object"}}], "messages": [{"role": "user", "content": "x"}]}')
    assert r.status_code == 400 and "rejects forced tool use" in r.json()["error"]["message"]


def test_unknown_route_and_method(proxy):
    with httpx2.Client() as c:
        r = c.get(proxy.url + "/v1/nothing")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
        r = c.get(proxy.url + "/v1/messages")
        assert r.status_code == 405 and r.json()["type"] == "error"


def test_models_and_count_tokens(proxy):
    with httpx2.Client() as c:
        models = c.get(proxy.url + "/v1/models").json()["data"]
        ids = [m["id"] for m in models]
        assert ids[0] == "auto" and "tierwise/classify_intent" in ids and "claude-haiku-5-5" in ids
        assert "claude-opus-4-1" not in ids  # retired on Anthropic's API
        r = c.post(proxy.url + "/v1/messages/count_tokens", headers=H,
                   json={"model": "tierwise/extract_entities", "messages": [{"role": "user", "content": "a" * 400}]})
        assert r.status_code == 200 and r.json()["input_tokens"] > 100
        assert r.headers["x-tierwise-model"] == "claude-haiku-5-5"


def test_adapted_request_header(proxy):
    with httpx2.Client() as c:
        r = c.post(proxy.url + "/v1/messages", headers=H, json={
            "model": "tierwise/review_code", "max_tokens": 20, "temperature": 0.1,
            "messages": [{"role": "user", "content": "def f(): pass"}]})
    assert r.status_code == 200
    assert r.headers["x-tierwise-adapted"] == "dropped:temperature"
    assert r.headers["x-tierwise-upstream"] == "offline"
