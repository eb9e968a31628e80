"""Every route x every credential: caller key, operator key, none, wrong, revoked, operator token.

With keys enforced: API routes take any valid key; operator routes (dashboard, /metrics,
/openapi.json, the task list, /healthz details) an operator key or the token; feedback a caller
key for its own request ids only. With keys not enforced everything stays open, as before.
"""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from tierwise.admission.keys import KeyStore
from tierwise.ledger import make_engine

V = {"anthropic-version": "2023-06-01"}
BODY = {"model": "claude-haiku-5-5", "max_tokens": 20, "messages": [{"role": "user", "content": "Classify: refund please"}]}
TOKEN = "operator-token-for-tests-0123456789"

# (method, path, json body or None)
ROUTES = {
    "messages": ("POST", "/v1/messages", BODY),
    "count_tokens": ("POST", "/v1/messages/count_tokens", {"model": "claude-haiku-5-5", "messages": BODY["messages"]}),
    "models": ("GET", "/v1/models", None),
    "models_retrieve": ("GET", "/v1/models/claude-haiku-5-5", None),
    "batches_list": ("GET", "/v1/messages/batches", None),
    "files_list": ("GET", "/v1/files", None),
    "healthz": ("GET", "/healthz", None),
    "openapi": ("GET", "/openapi.json", None),
    "metrics": ("GET", "/metrics", None),
    "dashboard": ("GET", "/dashboard", None),
    "dashboard_json": ("GET", "/dashboard/data.json", None),
}

# expected status per route and credential when keys are enforced
EXPECTED = {
    #                 caller operator none wrong revoked token
    "messages":       (200, 200, 401, 401, 401, 401),
    "count_tokens":   (200, 200, 401, 401, 401, 401),
    "models":         (200, 200, 401, 401, 401, 401),
    "models_retrieve": (200, 200, 401, 401, 401, 401),
    "batches_list":   (200, 200, 401, 401, 401, 401),
    "files_list":     (200, 200, 401, 401, 401, 401),
    "healthz":        (200, 200, 200, 401, 401, 200),
    "openapi":        (403, 200, 401, 401, 401, 200),
    "metrics":        (403, 200, 401, 401, 401, 200),
    "dashboard":      (403, 200, 401, 401, 401, 200),
    "dashboard_json": (403, 200, 401, 401, 401, 200),
}
WHO = ("caller", "operator", "none", "wrong", "revoked", "token")


@pytest.fixture
def proxy(fake_anthropic, proxy_factory, monkeypatch):
    monkeypatch.setenv("TW_TEST_UPSTREAM_KEY", "sk-upstream-secret")
    monkeypatch.setenv("TIERWISE_DASHBOARD_TOKEN", TOKEN)
    return proxy_factory(fake_anthropic.url, upstream={"api_key_env": "TW_TEST_UPSTREAM_KEY"},
                         monitor={"interval": 0.0})


@pytest.fixture
def creds(proxy):
    keys = proxy.state.guard.keys
    _, caller = keys.create("app")
    _, operator = keys.create("ops", role="operator")
    gone, revoked = keys.create("old")
    keys.revoke(gone.id)
    return {"caller": caller, "operator": operator, "none": None, "wrong": "tw-00000000-not-a-key", "revoked": revoked,
            "token": TOKEN}


def call(proxy, route, cred, **extra):
    method, path, body = ROUTES[route]
    headers = dict(V, **extra)
    if cred:
        headers["x-api-key"] = cred
    return httpx2.request(method, proxy.url + path, json=body, headers=headers, timeout=10, follow_redirects=False)


def feedback(proxy, cred, rid):
    headers = {"x-api-key": cred} if cred else {}
    return httpx2.post(proxy.url + "/v1/feedback", json={"request_id": rid, "outcome": "ok"}, headers=headers, timeout=10)


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_route_by_role(proxy, creds, route):
    for who, want in zip(WHO, EXPECTED[route]):
        r = call(proxy, route, creds[who])
        assert r.status_code == want, (route, who, r.status_code, r.text[:200])
        if want >= 400 and route == "dashboard":  # a browser page: the message as HTML
            assert r.headers["content-type"].startswith("text/html")
        elif want >= 400:
            err = r.json()
            assert err["type"] == "error" and err["request_id"].startswith("req_tw_")
            assert err["error"]["type"] == {401: "authentication_error", 403: "permission_error"}[want]
        if want >= 400:
            for secret in (creds["caller"], creds["revoked"], creds["operator"], TOKEN):
                assert secret not in r.text


def test_task_list_and_health_details_only_for_operators(proxy, creds):
    ids = lambda r: {m["id"] for m in r.json()["data"]}  # noqa: E731
    as_caller = ids(call(proxy, "models", creds["caller"]))
    as_operator = ids(call(proxy, "models", creds["operator"]))
    assert "auto" in as_caller and "claude-haiku-5-5" in as_caller
    assert not any(i.startswith("tierwise/") for i in as_caller)
    assert "tierwise/classify_intent" in as_operator
    assert call(proxy, "healthz", None).json() in ({"status": "ok"}, {"status": "degraded"})
    assert "recorded" not in call(proxy, "healthz", creds["caller"]).json()
    assert "recorded" in call(proxy, "healthz", creds["operator"]).json()


def test_feedback_only_on_own_request_ids(proxy, creds):
    keys = proxy.state.guard.keys
    _, other = keys.create("other-app")
    r = call(proxy, "messages", creds["caller"])
    assert r.status_code == 200
    rid = r.headers["x-tierwise-request-id"]
    made_up = "req_tw_" + "0" * 24
    assert feedback(proxy, creds["caller"], rid).status_code == 200
    for cred, target in ((other, rid), (creds["caller"], made_up)):
        r = feedback(proxy, cred, target)  # another key's id and an unknown id read the same
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error", r.text
    assert feedback(proxy, creds["operator"], rid).status_code == 200
    assert feedback(proxy, creds["operator"], made_up).status_code == 200
    assert feedback(proxy, TOKEN, rid).status_code == 200
    for who in ("none", "wrong", "revoked"):
        assert feedback(proxy, creds[who], rid).status_code == 401


def test_feedback_ownership_survives_a_restart(proxy, creds):
    """The owner is found in the ledger too (another replica, or this one after a restart)."""
    r = call(proxy, "messages", creds["caller"])
    rid = r.headers["x-tierwise-request-id"]
    proxy.state.ledger.flush(10)
    proxy.state.owners.clear()
    assert feedback(proxy, creds["caller"], rid).status_code == 200
    _, other = proxy.state.guard.keys.create("other")
    assert feedback(proxy, other, rid).status_code == 404


def test_request_ids_are_unguessable(proxy, creds):
    rids = [call(proxy, "messages", creds["caller"]).headers["x-tierwise-request-id"] for _ in range(3)]
    tails = [int(r[len("req_tw_"):], 16) for r in rids]
    assert len(set(rids)) == 3 and all(len(r) == len("req_tw_") + 24 for r in rids)
    assert max(tails) - min(tails) > 1 << 32  # not a counter


def test_not_enforced_everything_stays_open(fake_anthropic, proxy_factory, monkeypatch):
    monkeypatch.delenv("TIERWISE_DASHBOARD_TOKEN", raising=False)
    p = proxy_factory(fake_anthropic.url, monitor={"interval": 0.0})
    for route in ROUTES:
        r = call(p, route, None, **{"x-api-key": "sk-client-own"})
        assert r.status_code == 200, (route, r.text[:200])
    assert any(m["id"].startswith("tierwise/") for m in call(p, "models", None).json()["data"])
    assert "recorded" in call(p, "healthz", None).json()
    assert feedback(p, None, "req_tw_" + "1" * 24).status_code == 200


def test_a_revoked_key_is_refused_on_the_next_request_after_the_bound(fake_anthropic, proxy_factory, monkeypatch):
    """Revoked elsewhere (the CLI, another replica): refused once refresh_interval has passed,
    including the first request after a quiet period (it used to be served from the stale copy)."""
    import time

    monkeypatch.setenv("TW_TEST_UPSTREAM_KEY", "sk-upstream-secret")
    p = proxy_factory(fake_anthropic.url, upstream={"api_key_env": "TW_TEST_UPSTREAM_KEY"}, keys={"refresh_interval": 0.3},
                      monitor={"interval": 0.0})
    elsewhere = KeyStore(make_engine(p.state.settings.ledger_url))
    rec, key = elsewhere.create("app")
    time.sleep(0.35)  # a quiet period longer than the bound
    assert call(p, "messages", key).status_code == 200
    elsewhere.revoke(rec.id)
    time.sleep(0.35)
    r = call(p, "messages", key)
    assert r.status_code == 401, r.text


def test_keystore_bound_with_a_clock(tmp_path):
    """The bound without sleeping: a copy older than refresh_interval is never trusted."""
    from tierwise.ledger.schema import migrate

    eng = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    migrate(eng)
    now = [1000.0]
    store = KeyStore(eng, refresh_interval=5.0, clock=lambda: now[0])
    elsewhere = KeyStore(eng)
    rec, key = elsewhere.create("app")

    async def check() -> bool:
        await store.fresh()
        try:
            store.authenticate({"x-api-key": key})
            return True
        except Exception:  # noqa: BLE001
            return False

    assert not asyncio.run(check())  # the copy is from before the key existed and still young
    now[0] += 5.0
    assert asyncio.run(check())      # past the bound: re-read before answering
    elsewhere.revoke(rec.id)
    now[0] += 2.0
    reads = store.reads
    assert asyncio.run(check())      # young copy: no read on the request path
    now[0] += 3.0
    assert not asyncio.run(check())  # at the bound: refused on this very request
    assert store.reads > reads
