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
    (b'{"model": "auto", "messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request_error", "max_tokens: Field required"),
    (b'{"model": "auto", "max_tokens": 5}', 400, "invalid_request_error", "messages: Field required"),
    (b'{"model": "auto", "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request_error", "max_tokens: Input should be greater than or equal to 1"),
    (b'{"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request_error", "model: Field required"),
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


def test_forced_tool_use_goes_to_the_cheapest_tier_that_serves_it(proxy):
    # review_code -> balanced (Sonnet 5.5), which rejects forced tool use: the cheapest tier that serves it
    r = post(proxy, b'{"model": "tierwise/review_code", "max_tokens": 5, "tool_choice": {"type": "tool", "name": "t"},'
                    b' "tools": [{"name": "t", "input_schema": {"type": "object"}}], "messages": [{"role": "user", "content": "x"}]}')
    assert r.status_code == 200, r.text
    assert r.headers["x-tierwise-model"] == "claude-haiku-5-5" and r.headers["x-tierwise-tier"] == "fast"
    assert "forced tool use: Sonnet 5.5 rejects it -> claude-haiku-5-5 (fast)" in r.headers["x-tierwise-reason"]
    assert r.json()["content"][0]["type"] == "tool_use"


def test_a_request_no_configured_tier_serves_is_a_clear_400(proxy_factory):
    # every tier Sonnet 5.5: forced tool use cannot be served anywhere
    p = proxy_factory(catalog={"tiers": {"fast": "claude-sonnet-5-5", "balanced": "claude-sonnet-5-5",
                                         "deep": "claude-sonnet-5-5", "frontier": "claude-sonnet-5-5"}})
    r = post(p, b'{"model": "auto", "max_tokens": 5, "tool_choice": {"type": "tool", "name": "t"},'
                b' "tools": [{"name": "t", "input_schema": {"type": "object"}}], "messages": [{"role": "user", "content": "x"}]}')
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "forced tool use: Sonnet 5.5 rejects it, and none of the configured tiers" in r.json()["error"]["message"]


CLAUDE_CODE_BODY = {
    "max_tokens": 32000, "stream": False, "metadata": {"user_id": "u"}, "context_management": {"edits": []},
    "output_config": {"effort": "medium"}, "some_future_field": {"x": 1},
    "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
    "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "fix the bug"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                                     {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}},
                                     {"type": "brand_new_block", "payload": [1, 2]}]},
        {"role": "assistant", "content": [{"type": "text", "text": "on it"}]},
        {"role": "system", "content": "The user switched to plan mode."},
        {"role": "user", "content": "go on"},
    ],
}


@pytest.mark.parametrize("model", ["auto", "tierwise/review_code", "claude-haiku-5-5", "claude-opus-5-5"])
def test_claude_code_first_request_passes_through(proxy_factory, fake_anthropic, model):
    """role "system" messages, unknown blocks and fields, server tools: tolerated and sent on untouched."""
    import orjson

    p = proxy_factory(upstream={"kind": "anthropic", "url": fake_anthropic.url})
    hdrs = dict(H, **{"anthropic-beta": "mid-conversation-system-2026-04-07,claude-code-20250219"})
    r = post(p, orjson.dumps(dict(CLAUDE_CODE_BODY, model=model)), headers=hdrs, path="/v1/messages?beta=true")
    assert r.status_code == 200, r.text
    sent = orjson.loads(fake_anthropic.requests[-1][2])
    assert sent["messages"] == CLAUDE_CODE_BODY["messages"]  # the system message and every block kept, in order
    for k in ("metadata", "context_management", "output_config", "some_future_field", "tools", "system"):
        assert sent[k] == CLAUDE_CODE_BODY[k]
    p.state.ledger.flush()
    row = p.state.ledger.rows()[-1]
    assert row["requested_model"] == model and row["status"] == 200


def test_refused_requests_keep_the_requested_model_in_the_ledger(proxy):
    r = post(proxy, b'{"model": "tierwise/review_code", "max_tokens": -3, "messages": []}')
    assert r.status_code == 400
    proxy.state.ledger.flush()
    row = proxy.state.ledger.rows()[-1]
    assert row["status"] == 400 and row["requested_model"] == "tierwise/review_code"


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


@pytest.mark.parametrize("model,routed", [("auto", True), ("tierwise/review_code", True), ("claude-haiku-5-5", False)])
def test_routed_system_messages_get_their_beta(proxy_factory, fake_anthropic, model, routed):
    """Claude Code sends "system" entries without an enabling beta when it does not know the model id (auto,
    tierwise/<task>): tierwise chose the model, so it enables what the body uses and says so; an explicit id
    is the caller's own business and reaches the API untouched (which refuses it in its own words)."""
    import orjson

    p = proxy_factory(upstream={"kind": "anthropic", "url": fake_anthropic.url})
    hdrs = dict(H, **{"anthropic-beta": "claude-code-20250219"})
    r = post(p, orjson.dumps(dict(CLAUDE_CODE_BODY, model=model)), headers=hdrs, path="/v1/messages?beta=true")
    sent_betas = fake_anthropic.requests[-1][1].get("anthropic-beta", "")
    if routed:
        assert r.status_code == 200, r.text
        assert "beta+mid-conversation-system-2026-04-07" in r.headers["x-tierwise-adapted"]
        assert sent_betas.split(",") == ["claude-code-20250219", "mid-conversation-system-2026-04-07"]
    else:
        assert r.status_code == 400 and "Unexpected role" in r.json()["error"]["message"]
        assert sent_betas == "claude-code-20250219"
    # with an enabling beta already there nothing is added
    hdrs = dict(H, **{"anthropic-beta": "per-turn-control-2026-07-01"})
    r = post(p, orjson.dumps(dict(CLAUDE_CODE_BODY, model=model)), headers=hdrs)
    assert r.status_code == 200, r.text
    assert fake_anthropic.requests[-1][1].get("anthropic-beta") == "per-turn-control-2026-07-01"
    assert "beta+" not in r.headers.get("x-tierwise-adapted", "")
