"""Keys, pools, rate limits, budgets and input limits through the real proxy."""

from __future__ import annotations

import concurrent.futures

import httpx2
import orjson
import pytest

from .test_sdk_end_to_end import ledger_rows

BODY = {"model": "claude-haiku-5-5", "max_tokens": 40, "messages": [{"role": "user", "content": "Classify: refund please"}]}
V = {"anthropic-version": "2023-06-01"}


@pytest.fixture
def keyed(fake_anthropic, proxy_factory, monkeypatch):
    monkeypatch.setenv("TW_TEST_UPSTREAM_KEY", "sk-upstream-secret")

    def make(**overrides):
        up = overrides.pop("upstream", {})
        return proxy_factory(fake_anthropic.url, upstream=dict(up, api_key_env="TW_TEST_UPSTREAM_KEY"), **overrides)

    return make


def post(proxy, key=None, body=None, **headers):
    h = dict(V, **headers)
    if key:
        h["x-api-key"] = key
    return httpx2.post(proxy.url + "/v1/messages", json=body or BODY, headers=h, timeout=10)


def test_keys_turn_on_when_one_exists(keyed, fake_anthropic):
    proxy = keyed()
    assert post(proxy, "sk-anything").status_code == 200  # no keys yet: open, as before
    rec, key = proxy.state.guard.keys.create("app")
    r = post(proxy)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = post(proxy, "tw-wrong-key")
    assert r.status_code == 401 and "tw-wrong-key" not in r.text
    r = post(proxy, key)
    assert r.status_code == 200
    _, sent, _ = fake_anthropic.requests[-1]
    assert sent["x-api-key"] == "sk-upstream-secret" and key not in repr(sent)  # the proxy key never goes upstream
    rows = ledger_rows(proxy)
    assert rows[-1]["key_id"] == rec.id
    assert key not in repr(rows) and "sk-upstream-secret" not in repr(rows)
    # count_tokens is guarded too
    r = httpx2.post(proxy.url + "/v1/messages/count_tokens", json={"model": "auto", "messages": BODY["messages"]}, headers=V)
    assert r.status_code == 401


def test_required_without_keys_refuses(keyed):
    proxy = keyed(keys={"required": True})
    assert post(proxy, "sk-x").status_code == 401


def test_pool_limits_the_tiers_whatever_auto_decides(keyed):
    proxy = keyed()
    _, key = proxy.state.guard.keys.create("cheap", allow=["fast", "balanced"])
    r = post(proxy, key, dict(BODY, model="tierwise/security_review"))  # the registry says deep
    assert r.status_code == 200 and r.headers["x-tierwise-tier"] == "balanced"
    assert "may not use tier deep" in r.headers["x-tierwise-reason"]
    for model in ("claude-opus-5-5", "claude-opus-4-7", "claude-fable-5-1"):
        r = post(proxy, key, dict(BODY, model=model))
        assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert post(proxy, key, dict(BODY, model="auto")).headers["x-tierwise-tier"] in ("fast", "balanced")


def test_rate_limit_per_key(keyed):
    proxy = keyed()
    _, key = proxy.state.guard.keys.create("slow", rpm=2)
    assert [post(proxy, key).status_code for _ in range(3)] == [200, 200, 429]
    r = post(proxy, key)
    assert r.json()["error"]["type"] == "rate_limit_error" and int(r.headers["retry-after"]) >= 1


def test_concurrent_spend_never_passes_the_budget(keyed):
    proxy = keyed()
    budget_usd = 0.0002
    rec, key = proxy.state.guard.keys.create("budgeted", budget_usd=budget_usd)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: post(proxy, key), range(40)))
    codes = [r.status_code for r in results]
    assert set(codes) <= {200, 429} and 0 < codes.count(200) < 40
    refused = next(r for r in results if r.status_code == 429)
    msg = refused.json()["error"]["message"]
    assert "budget" in msg and rec.id in msg and "resets at" in msg and refused.headers["x-should-retry"] == "false"
    rows = ledger_rows(proxy, 40)
    spent = sum(r["cost_nanos"] or 0 for r in rows if r["key_id"] == rec.id)
    one = max(r["cost_nanos"] or 0 for r in rows)
    assert spent <= budget_usd * 1e9 + one
    assert spent <= budget_usd * 1e9  # with reservations it does not pass at all


def test_budget_downgrade(keyed):
    proxy = keyed(budgets={"action": "downgrade", "tasks": {"security_review": 0.0001}})
    r = post(proxy, None, dict(BODY, model="tierwise/security_review"), **{"x-api-key": "sk-c"})
    assert r.status_code == 200 and r.headers["x-tierwise-tier"] == "fast"
    assert "budget: downgraded from deep" in r.headers["x-tierwise-reason"]
    # refusing instead
    proxy2 = keyed(budgets={"tasks": {"security_review": 0.0001}})
    r = post(proxy2, "sk-c", dict(BODY, model="tierwise/security_review"))
    assert r.status_code == 429 and "task type 'security_review'" in r.json()["error"]["message"]


def test_input_limits(keyed):
    proxy = keyed(limits={"max_messages": 2, "max_header_value_bytes": 1024}, server={"max_body_bytes": 4096})
    many = dict(BODY, messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                {"role": "user", "content": "c"}])
    r = post(proxy, "sk-c", many)
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
    r = post(proxy, "sk-c", **{"x-big": "v" * 2000})
    assert r.status_code == 431 and r.json()["type"] == "error"
    r = post(proxy, "sk-c", dict(BODY, max_tokens=10_000_000))
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]
    r = post(proxy, "sk-c", dict(BODY, messages=[{"role": "user", "content": "x" * 10_000}]))
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"
    rows = ledger_rows(proxy)
    assert [r["status"] for r in rows] == [400, 431, 400, 413]


def count(proxy, key=None, body=None):
    h = dict(V, **({"x-api-key": key} if key else {}))
    return httpx2.post(proxy.url + "/v1/messages/count_tokens", json=body or {"model": "auto", "messages": BODY["messages"]},
                       headers=h, timeout=10)


def test_count_tokens_counts_against_the_key_rate_limit(keyed):
    proxy = keyed()
    _, key = proxy.state.guard.keys.create("slow", rpm=2)
    assert count(proxy, key).status_code == 200
    r = count(proxy, key)
    assert r.status_code == 200 and r.json()["input_tokens"] > 0
    r = count(proxy, key)
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error" and int(r.headers["retry-after"]) >= 1
    assert post(proxy, key).status_code == 429  # one budget of requests per minute for both endpoints


def test_count_tokens_keeps_to_the_key_pool(keyed, fake_anthropic):
    proxy = keyed()
    _, key = proxy.state.guard.keys.create("cheap", allow=["fast", "balanced"])
    sonnet = proxy.state.settings.catalog.model_for_tier("balanced").id
    n = len(fake_anthropic.requests)
    r = count(proxy, key, {"model": "tierwise/security_review", "messages": BODY["messages"]})  # the registry says deep
    assert r.status_code == 200 and r.headers["x-tierwise-model"] == sonnet
    path, _, sent = fake_anthropic.requests[-1]
    assert path == "/v1/messages/count_tokens" and orjson.loads(sent)["model"] == sonnet
    for model in ("claude-opus-5-5", "claude-opus-4-7"):
        r = count(proxy, key, {"model": model, "messages": BODY["messages"]})
        assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert len(fake_anthropic.requests) == n + 1  # refused calls never reach the upstream
