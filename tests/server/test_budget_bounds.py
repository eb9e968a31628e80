"""Budgets keep their promise when the real usage is far above what the body's size suggests: a
document by file_id (its pages are read by the API, not sent), answered by an upstream that bills
300,000 input tokens for it. 50 concurrent requests against a budget worth a handful of them: the
spend stays within the limit (the old estimate, from the body's 200 bytes, let all 50 through)."""

from __future__ import annotations

import concurrent.futures
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2

from tierwise.admission.budgets import NANOS, estimate_request
from tierwise.config import load_settings

from .test_sdk_end_to_end import ledger_rows

DOC_BODY = {"model": "claude-haiku-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": [
    {"type": "document", "source": {"type": "file", "file_id": "file_011abc"}},
    {"type": "text", "text": "Summarise the contract."}]}]}


class _BigUsage(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps({"id": "msg_big", "type": "message", "role": "assistant", "model": "claude-haiku-5-5",
                           "content": [{"type": "text", "text": "summary"}], "stop_reason": "end_turn",
                           "stop_sequence": None, "usage": {"input_tokens": 300_000, "output_tokens": 40}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("request-id", "req_big")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):  # quiet
        pass


def test_estimate_counts_what_the_body_references():
    cat = load_settings(None, environ={}).catalog
    haiku = cat.get("claude-haiku-5-5")
    plain = estimate_request(haiku, {"messages": [{"role": "user", "content": "hi"}]}, 300, 100)
    assert plain.why == [] and plain.nanos == 116 * 100 + 100 * 500  # as before: 1 token per 3 bytes
    doc = estimate_request(haiku, DOC_BODY, 300, 50)
    assert doc.why == ["a document by file_id"]
    long = haiku.price_at().rates_for(haiku.context_window)
    assert doc.nanos == int((haiku.context_window * long.input + 50 * long.output) * 1000)
    url_img = estimate_request(haiku, {"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]}, 300, 50)
    assert url_img.why == ["an image by url"] and url_img.nanos == doc.nanos
    tools = {"messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]}
    searched = estimate_request(haiku, tools, 300, 50)
    assert searched.nanos == 4 * doc.nanos and "3 uses" in searched.why[0]
    no_max = estimate_request(haiku, {"messages": [], "tools": [{"type": "web_fetch_20250910", "name": "web_fetch"}]},
                              300, 50, server_tool_uses=10)
    assert no_max.nanos == 11 * doc.nanos and "no max_uses" in no_max.why[0]
    client_tool = estimate_request(haiku, {"messages": [], "tools": [{"name": "get_weather", "input_schema": {}}]}, 300, 50)
    assert client_tool.why == []
    cached = estimate_request(haiku, {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}]}, 300, 100)
    r = haiku.price_at().rates
    assert cached.nanos == int((116 * r.cache_write_1h + 100 * r.output) * 1000) > plain.nanos


def test_budget_race_with_under_estimated_usage(proxy_factory, monkeypatch):
    monkeypatch.setenv("TW_TEST_UPSTREAM_KEY", "sk-upstream")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _BigUsage)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        limit_usd = 1.0  # each call really costs ~$0.15 (300k tokens at the long-context rate)
        proxy = proxy_factory(f"http://127.0.0.1:{srv.server_port}", upstream={"api_key_env": "TW_TEST_UPSTREAM_KEY"},
                              budgets={"daily_usd": limit_usd})

        def post(_):
            return httpx2.post(proxy.url + "/v1/messages", json=DOC_BODY, timeout=20,
                               headers={"x-api-key": "sk-c", "anthropic-version": "2023-06-01"})

        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            results = list(pool.map(post, range(50)))
        codes = [r.status_code for r in results]
        assert set(codes) <= {200, 429} and codes.count(200) >= 1
        refused = next(r for r in results if r.status_code == 429)
        msg = refused.json()["error"]["message"]
        assert "a document by file_id" in msg and "cost bound" in msg
        rows = ledger_rows(proxy, 50)
        spent = sum(r["cost_nanos"] or 0 for r in rows)
        largest = max(r["cost_nanos"] or 0 for r in rows)
        print(f"budget race: {codes.count(200)} of 50 admitted, spend ${spent / NANOS:.4f} against a limit of "
              f"${limit_usd:.2f} (largest single call ${largest / NANOS:.4f})")
        assert spent <= limit_usd * NANOS + largest
        assert spent <= limit_usd * NANOS  # reservations are upper bounds: no overshoot at all here
    finally:
        srv.shutdown()
