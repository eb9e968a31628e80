"""The ledger database refusing connections mid-run, through the real proxy (PostgreSQL behind a gate):
with budgets fail_open every call is answered 200, with fail_closed budgeted calls get a 529 in
Anthropic's format (never a 500), and once the database is back every answered call has its row."""

from __future__ import annotations

import concurrent.futures
import time

import httpx2
import pytest
import sqlalchemy as sa

from ..tcp_gate import TcpGate

BODY = {"model": "claude-haiku-5-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hello"}]}


def _rows(url: str) -> list[str]:
    eng = sa.create_engine(url)
    with eng.connect() as c:
        ids = [r[0] for r in c.execute(sa.text("SELECT request_id FROM calls"))]
    eng.dispose()
    return ids


@pytest.mark.parametrize("policy", ["fail_open", "fail_closed"])
def test_database_outage_mid_run(policy, pg_url, fake_anthropic, proxy_factory, monkeypatch):
    monkeypatch.setenv("TW_TEST_UPSTREAM_KEY", "sk-upstream")
    with TcpGate("127.0.0.1", 5432) as gate:
        url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{gate.port}")
        proxy = proxy_factory(fake_anthropic.url, upstream={"api_key_env": "TW_TEST_UPSTREAM_KEY"},
                              ledger={"url": url, "flush_interval": 0.05},
                              budgets={"daily_usd": 100.0, "on_store_error": policy, "store": "database"})

        def post(i, stream=False):
            r = httpx2.post(proxy.url + "/v1/messages", json=dict(BODY, stream=stream), timeout=20,
                            headers={"x-api-key": "sk-c", "anthropic-version": "2023-06-01"})
            return r.status_code, r.headers.get("x-tierwise-request-id"), r.content

        assert post(0)[0] == 200
        gate.shut()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            during = list(pool.map(lambda i: post(i, stream=i % 2 == 0), range(40)))
        codes = {c for c, _, _ in during}
        if policy == "fail_open":
            assert codes == {200}
        else:
            assert codes == {529}
            assert b'"overloaded_error"' in during[0][2] and b"budget store unavailable" in during[0][2]
        h = httpx2.get(proxy.url + "/healthz", timeout=5).json()
        assert h["status"] == "degraded"
        gate.open()
        answered = {rid for c, rid, _ in during}
        end = time.monotonic() + 30
        while time.monotonic() < end and not answered <= set(_rows(pg_url)):
            time.sleep(0.1)
        rows = _rows(pg_url)
        assert answered <= set(rows) and len(rows) == len(set(rows)) == 41  # every call, once


def test_a_replica_starts_while_the_database_is_down(pg_url, fake_anthropic, proxy_factory, monkeypatch):
    """It starts and answers: with the keys unknown (the database holds them) a call gets a 529 in
    Anthropic's format, never a 500; once the database is back calls are served, and every call,
    refused or answered, has its row."""
    from tierwise.ledger import Ledger

    Ledger(pg_url, journal="off").close()  # the fleet's database exists; this replica cannot reach it yet
    monkeypatch.setenv("TW_TEST_UPSTREAM_KEY", "sk-upstream")
    with TcpGate("127.0.0.1", 5432) as gate:
        gate.shut()
        url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{gate.port}")
        proxy = proxy_factory(fake_anthropic.url, upstream={"api_key_env": "TW_TEST_UPSTREAM_KEY"},
                              ledger={"url": url, "flush_interval": 0.05})

        def post(i):
            r = httpx2.post(proxy.url + "/v1/messages", json=dict(BODY, stream=i % 2 == 0), timeout=20,
                            headers={"x-api-key": "sk-c", "anthropic-version": "2023-06-01"})
            return r.status_code, r.headers["x-tierwise-request-id"], r

        down = [post(i) for i in range(4)]
        assert {c for c, _, _ in down} == {529} and down[0][2].json()["error"]["type"] == "overloaded_error"
        assert httpx2.get(proxy.url + "/healthz", timeout=5).json()["status"] == "degraded"
        gate.open()
        end = time.monotonic() + 30
        up = post(0)
        while up[0] != 200 and time.monotonic() < end:
            time.sleep(0.2)
            up = post(0)
        assert up[0] == 200
        ids = {rid for _, rid, _ in down} | {up[1]}
        while time.monotonic() < end and not ids <= set(_rows(pg_url)):
            time.sleep(0.1)
        assert ids <= set(_rows(pg_url))
