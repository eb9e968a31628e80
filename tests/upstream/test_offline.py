from __future__ import annotations

import orjson
import pytest

from tierwise.errors import OverloadedError, UpstreamConnectionError
from tierwise.upstream.offline import OfflineUpstream, synthesize
from tierwise.upstream.sse import StreamMeter


def body(model="claude-haiku-5-5", text="hello", **kw):
    return orjson.dumps({"model": model, "max_tokens": 500, "messages": [{"role": "user", "content": text}], **kw})


def test_deterministic_and_labelled():
    a = synthesize(orjson.loads(body()))
    b = synthesize(orjson.loads(body()))
    assert a == b
    assert a["content"][0]["text"].startswith("[offline synthetic answer from claude-haiku-5-5]")


def test_tokens_grow_with_prompt():
    short = synthesize(orjson.loads(body(text="hi")))["usage"]["input_tokens"]
    long = synthesize(orjson.loads(body(text="word " * 1000)))["usage"]["input_tokens"]
    assert long > short + 1000


def test_cache_control_writes_then_reads():
    up = OfflineUpstream(latency_scale=0)
    params = {"model": "claude-sonnet-5-5", "max_tokens": 50, "system": [
        {"type": "text", "text": "policy " * 500, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "q"}]}
    seen: set[str] = set()
    first = synthesize(params, seen)["usage"]
    second = synthesize(params, seen)["usage"]
    assert first["cache_creation_input_tokens"] > 0 and first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert up.name == "offline"


async def test_stream_has_real_event_sequence_and_usage():
    up = OfflineUpstream(latency_scale=0)
    resp = await up.send("/v1/messages", body(stream=True), headers={}, stream=True)
    meter = StreamMeter()
    raw = b""
    async for chunk in resp.chunks:
        raw += chunk
        meter.feed(chunk)
    events = [line.split(b": ", 1)[1] for line in raw.split(b"\n") if line.startswith(b"event:")]
    assert events[:3] == [b"message_start", b"content_block_start", b"ping"]
    assert events[-3:] == [b"content_block_stop", b"message_delta", b"message_stop"]
    assert raw.endswith(b"\n\n") and meter.completed
    full = synthesize(orjson.loads(body()))
    assert meter.usage.output_tokens == full["usage"]["output_tokens"]
    assert meter.model == "claude-haiku-5-5"


async def test_fault_injection():
    up = OfflineUpstream(latency_scale=0)
    with pytest.raises(OverloadedError) as exc:
        await up.send("/v1/messages", body(), headers={"x-tierwise-fault": "status=529,retry_after=3"}, stream=False)
    assert exc.value.headers["retry-after"] == "3.0"
    resp = await up.send("/v1/messages", body(stream=True), headers={"x-tierwise-fault": "cut=4"}, stream=True)
    with pytest.raises(UpstreamConnectionError):
        async for _ in resp.chunks:
            pass
    resp = await up.send("/v1/messages", body(stream=True), headers={"x-tierwise-fault": "error_event=3"}, stream=True)
    meter = StreamMeter()
    async for chunk in resp.chunks:
        meter.feed(chunk)
    assert meter.error_type == "overloaded_error" and not meter.completed


async def test_malformed_tools_is_the_apis_400_not_a_crash():
    from tierwise.errors import InvalidRequestError

    up = OfflineUpstream(latency_scale=0)
    for tools in (3, "x", {"name": "t"}):
        with pytest.raises(InvalidRequestError) as exc:
            await up.send("/v1/messages", body(tools=tools, tool_choice={"type": "any"}), headers={}, stream=False)
        assert exc.value.status == 400 and "tools: Input should be a valid list" in str(exc.value)


async def test_latency_follows_tier():
    from tierwise.upstream.offline import LATENCY

    assert LATENCY["haiku"][0] < LATENCY["sonnet"][0] < LATENCY["opus"][0]


def test_meter_handles_split_chunks_and_fallback_block():
    stream = (b'event: message_start\ndata: {"type":"message_start","message":{"model":"claude-opus-4-7","usage":'
              b'{"input_tokens":25,"output_tokens":1}}}\n\nevent: content_block_start\ndata: {"type":"content_block_start",'
              b'"index":0,"content_block":{"type":"fallback","from":{"model":"claude-opus-4-7"},"to":{"model":"claude-sonnet-4-5"}}}\n\n'
              b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":8}}\n\n'
              b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    meter = StreamMeter()
    for i in range(0, len(stream), 7):
        meter.feed(stream[i:i + 7])
    assert meter.priced_model == "claude-sonnet-4-5" and meter.usage.input_tokens == 25 and meter.usage.output_tokens == 8
    assert meter.stop_reason == "end_turn" and meter.completed


@pytest.mark.parametrize("event", [
    b'{"type":"message_start","message":"not an object"}',
    b'{"type":"message_start","message":{"model":"claude-haiku-5-5","usage":{"input_tokens":"lots"}}}',
    b'{"type":"message_delta","delta":"x","usage":{"output_tokens":"many"}}',
    b'{"type":"error","error":"overloaded"}',
])
def test_meter_survives_malformed_accounting_events(event):
    # the proxy forwards the bytes unchanged; a malformed accounting field must not break the stream
    meter = StreamMeter()
    meter.feed(b"event: x\ndata: " + event + b"\n\nevent: message_stop\ndata: {}\n\n")
    assert meter.completed
