"""GET /metrics: Prometheus counters and histograms by tier, task and status."""

from __future__ import annotations

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from ..evidence_helpers import flushed, send


def _samples(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_match_the_ledger(proxy_factory):
    proxy = proxy_factory(monitor={"interval": 0})
    send(proxy, "classify_intent", n=3)
    send(proxy, "draft_email", n=2, stream=True)
    r = httpx2.post(proxy.url + "/v1/messages", json={"model": "tierwise/draft_email", "max_tokens": 5,
                                                     "messages": [{"role": "user", "content": "x"}]},
                    headers={"x-tierwise-fault": "status=529"})
    assert r.status_code == 529
    flushed(proxy)
    m = httpx2.get(proxy.url + "/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    s = _samples(m.text)
    rows = proxy.state.ledger.rows()

    def lab(**kw):
        return tuple(sorted(kw.items()))

    assert s[("tierwise_requests_total", lab(tier="fast", task="classify_intent", status="200"))] == 3
    assert s[("tierwise_requests_total", lab(tier="balanced", task="draft_email", status="200"))] == 2
    assert s[("tierwise_requests_total", lab(tier="balanced", task="draft_email", status="529"))] == 1
    fast = [x for x in rows if x["tier"] == "fast"]
    assert s[("tierwise_tokens_total", lab(tier="fast", task="classify_intent", kind="output"))] == sum(x["output_tokens"] for x in fast)
    cost = s[("tierwise_cost_usd_total", lab(tier="fast", task="classify_intent"))]
    assert abs(cost - sum(x["cost_nanos"] for x in fast) / 1e9) < 1e-12
    assert s[("tierwise_request_latency_seconds_count", lab(tier="fast", task="classify_intent"))] == 3
    assert s[("tierwise_time_to_first_token_seconds_count", lab(tier="balanced"))] == 2
    assert ("tierwise_saved_vs_default_usd_total", lab(tier="fast", task="classify_intent")) in s


def test_metrics_are_cheap_and_never_raise():
    from tierwise.server.metrics import Metrics

    m = Metrics()
    m.observe({"tier": "fast", "task": "t", "status": 200, "cost_nanos": 10, "latency_ms": 5.0})
    m.observe({"weird": object()})  # a malformed row must not break a request
    assert b'tierwise_requests_total{status="200",task="t",tier="fast"} 1.0' in m.exposition()[0]
