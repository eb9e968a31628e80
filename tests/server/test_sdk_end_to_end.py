"""The official anthropic SDK as the client of a real running proxy, whose upstream is a local
server speaking Anthropic's wire protocol."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from tierwise.cost import Usage, cost_nanos
from tierwise.ledger import Ledger

from ..conftest import SSE_DIR


def sdk(proxy, **kw):
    return anthropic.Anthropic(base_url=proxy.url, api_key="sk-test-client-key", max_retries=0, **kw)


def ledger_rows(proxy, n=None):
    """The ledger rows once ``n`` calls (default: every call the proxy has seen) are written."""
    import time

    led: Ledger = proxy.state.ledger
    deadline = time.monotonic() + 10
    while proxy.state.inflight and time.monotonic() < deadline:  # a stream's row is recorded after its last byte
        time.sleep(0.005)
    while True:
        assert led.flush(10)
        rows = led.rows()
        if len(rows) >= (n if n is not None else proxy.state.recorded) or time.monotonic() > deadline:
            return rows
        time.sleep(0.01)


def test_auto_non_streaming_routes_and_accounts(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url)
    client = sdk(proxy)
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=64, messages=[{"role": "user", "content": "Classify the intent: where is my parcel?"}])
    msg = raw.parse()
    assert isinstance(msg, anthropic.types.Message)
    assert msg.model == "claude-haiku-5-5"
    assert raw.headers["x-tierwise-tier"] == "fast"
    assert raw.headers["x-tierwise-model"] == "claude-haiku-5-5"
    assert "intent or label classification" in raw.headers["x-tierwise-reason"]
    # the fake upstream received the routed model and the client's own key
    path, headers, body = fake_anthropic.requests[-1]
    assert path == "/v1/messages" and b'"model":"claude-haiku-5-5"' in body
    assert headers.get("x-api-key") == "sk-test-client-key" or headers.get("authorization") == "Bearer sk-test-client-key"
    rows = ledger_rows(proxy)
    assert len(rows) == 1
    row = rows[0]
    assert row["tier"] == "fast" and row["model"] == "claude-haiku-5-5" and row["status"] == 200
    assert row["input_tokens"] == msg.usage.input_tokens and row["output_tokens"] == msg.usage.output_tokens
    catalog = proxy.state.settings.catalog
    expect = cost_nanos(catalog.get("claude-haiku-5-5"), Usage(msg.usage.input_tokens, msg.usage.output_tokens))
    assert row["cost_nanos"] == expect
    assert float(raw.headers["x-tierwise-cost-usd"]) == pytest.approx(expect / 1e9)
    # the same usage on the default (balanced) tier is 20x the Haiku price
    assert row["default_cost_nanos"] == 20 * expect
    # no prompt text stored by default, and never the key
    assert row["prompt"] is None
    assert "sk-test-client-key" not in repr(rows)


def test_task_type_streaming_passes_events_and_reads_usage(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url)
    client = sdk(proxy)
    with client.messages.stream(model="tierwise/review_code", max_tokens=200,
                                messages=[{"role": "user", "content": "Review this: def add(a, b): return a - b"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("[offline synthetic answer from claude-sonnet-5-5]")
    assert final.model == "claude-sonnet-5-5"
    rows = ledger_rows(proxy)
    assert rows[-1]["task"] == "review_code" and rows[-1]["tier"] == "balanced" and rows[-1]["stream"]
    assert rows[-1]["output_tokens"] == final.usage.output_tokens > 1
    assert rows[-1]["ttft_ms"] is not None and rows[-1]["ttft_ms"] <= rows[-1]["latency_ms"]


def test_task_header_and_explicit_model(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url)
    client = sdk(proxy)
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=32, messages=[{"role": "user", "content": "hello"}],
        extra_headers={"x-tierwise-task": "security_review"})
    assert raw.headers["x-tierwise-tier"] == "deep" and raw.parse().model == "claude-opus-5-5"
    msg = client.messages.create(model="claude-sonnet-4-5-20250929", max_tokens=32, extra_body={"temperature": 0.2},
                                 messages=[{"role": "user", "content": "hello"}])
    assert msg.model == "claude-sonnet-4-5-20250929"  # passed through untouched
    _, _, body = fake_anthropic.requests[-1]
    assert b'"temperature":0.2' in body
    rows = ledger_rows(proxy)
    assert rows[-1]["router"] == "passthrough" and rows[-1]["model"] == "claude-sonnet-4-5-20250929"
    assert rows[-1]["cost_nanos"] > 0  # dated id priced through the catalog alias


def test_errors_come_back_in_anthropic_format(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url)
    client = sdk(proxy)
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.messages.create(model="tierwise/no_such_task", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert "unknown task type 'no_such_task'" in str(exc.value) and "classify_intent" in str(exc.value)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="claude-imaginary-9", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.InternalServerError) as over:
        client.messages.create(model="auto", max_tokens=10, messages=[{"role": "user", "content": "x"}],
                               extra_headers={"x-tierwise-fault": "status=529"})
    assert over.value.status_code == 529
    assert over.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.RateLimitError) as rl:
        client.messages.create(model="auto", max_tokens=10, messages=[{"role": "user", "content": "x"}],
                               extra_headers={"x-tierwise-fault": "status=429,retry_after=7"})
    assert rl.value.response.headers["retry-after"] == "7.0"
    rows = ledger_rows(proxy)
    assert [r["status"] for r in rows] == [400, 404, 529, 429]
    assert rows[2]["error_type"] == "overloaded_error"


def test_sdk_with_mock_transport_still_parses_tierwise_answers(proxy_factory):
    """SDK 2.x is built on httpx2: a MockTransport can stand in for the network too."""
    proxy = proxy_factory()  # offline upstream

    def handler(request: httpx2.Request) -> httpx2.Response:
        with httpx2.Client() as c:  # forward to the real proxy
            r = c.request(request.method, proxy.url + request.url.path, content=request.content,
                          headers={k: v for k, v in request.headers.items() if k.lower() != "host"})
        return httpx2.Response(r.status_code, headers=r.headers, content=r.content)

    client = anthropic.Anthropic(api_key="k", base_url="http://tierwise.invalid",
                                 http_client=httpx2.Client(transport=httpx2.MockTransport(handler)), max_retries=0)
    msg = client.messages.create(model="auto", max_tokens=20, messages=[{"role": "user", "content": "extract the date: 3 May"}])
    assert msg.content[0].text.startswith("[offline synthetic answer from")


@pytest.mark.skipif(not SSE_DIR.exists(), reason=f"reference SSE fixtures not found at {SSE_DIR}")
@pytest.mark.parametrize("name", sorted(p.name for p in SSE_DIR.glob("*.sse")) if SSE_DIR.exists() else [])
def test_recorded_streams_pass_byte_for_byte(name, proxy_factory):
    from tierwise.upstream.fakeserver import FakeAnthropic

    with FakeAnthropic() as fake:
        proxy = proxy_factory(fake.url)
        with httpx2.Client() as c:
            with c.stream("POST", proxy.url + "/v1/messages", json={
                    "model": "claude-opus-4-7", "max_tokens": 100, "stream": True,
                    "messages": [{"role": "user", "content": "hi"}]},
                    headers={"x-api-key": "k", "anthropic-version": "2023-06-01", "x-fake-replay": str(SSE_DIR / name)}) as r:
                got = b"".join(r.iter_bytes())
    assert got == (SSE_DIR / name).read_bytes()
    row = ledger_rows(proxy)[-1]
    text = (SSE_DIR / name).read_text()
    if '"fallback"' in text and '"to":{"model":"claude-sonnet-4-5"}' in text:
        assert row["model"] == "claude-sonnet-4-5"  # the model that actually answered is priced
    assert row["input_tokens"] > 0 and row["status"] == 200 and row["stop_reason"] in ("end_turn", "refusal", "tool_use", "max_tokens")
    if "refusal" in name:
        assert row["stop_reason"] == "refusal"
    if proxy.state.settings.catalog.get(row["model"]) is not None:
        assert row["cost_nanos"] > 0
    else:  # e.g. claude-3-opus-latest: not in the catalog, so the cost is unknown, never guessed
        assert row["cost_nanos"] is None


def test_postgresql_ledger_end_to_end(fake_anthropic, proxy_factory, pg_url):
    proxy = proxy_factory(fake_anthropic.url, ledger={"url": pg_url})
    client = sdk(proxy)
    for task in ("classify_intent", "draft_email", "security_review"):
        client.messages.create(model=f"tierwise/{task}", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    with client.messages.stream(model="auto", max_tokens=20, messages=[{"role": "user", "content": "hi"}]) as s:
        s.get_final_message()
    rows = ledger_rows(proxy, 4)
    assert proxy.state.ledger.engine.dialect.name == "postgresql"
    assert [r["tier"] for r in rows] == ["fast", "balanced", "deep", "fast"]
    assert all(r["cost_nanos"] > 0 for r in rows)
