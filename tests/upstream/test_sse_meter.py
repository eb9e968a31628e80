"""StreamMeter reads any chunking of a stream the same way, holds a bounded amount, and is linear."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from tierwise.upstream.sse import StreamMeter, format_event

REF = Path("/work/shared/reference/anthropic-sse")


def _stream() -> bytes:
    events = [
        ("message_start", {"type": "message_start", "message": {"model": "claude-haiku-5-5", "usage": {
            "input_tokens": 11, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta",
                                                                                      "signature": "sig-" + "x" * 300}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta",
                                                                                      "text": "hello " * 500}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 42}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return b"".join(format_event(e, d) for e, d in events)


def _read(data: bytes, cuts: list[int], **kw) -> StreamMeter:
    m = StreamMeter(**kw)
    prev = 0
    for c in sorted(cuts) + [len(data)]:
        m.feed(data[prev:c])
        prev = c
    return m


def _facts(m: StreamMeter) -> tuple:
    return (m.model, m.usage.input_tokens, m.usage.output_tokens, m.stop_reason, m.completed, m.events,
            m.signatures, m.error_type)


def _sources() -> list[bytes]:
    out = [_stream()]
    if REF.is_dir():
        out += [p.read_bytes() for p in sorted(REF.glob("*.sse"))]
    return out


@pytest.mark.parametrize("seed", range(20))
def test_any_chunking_reads_the_same(seed):
    rnd = random.Random(seed)
    for data in _sources():
        whole = _read(data, [])
        n = rnd.choice([1, 3, 17, 200])
        cuts = rnd.sample(range(1, len(data)), min(n, len(data) - 1))
        assert _facts(_read(data, cuts)) == _facts(whole)
    byte_by_byte = _read(_stream(), list(range(1, len(_stream()))))
    assert _facts(byte_by_byte) == _facts(_read(_stream(), []))
    assert byte_by_byte.usage.output_tokens == 42 and byte_by_byte.completed


def test_a_giant_line_is_passed_over_and_memory_stays_bounded():
    m = StreamMeter(max_line=64 * 1024)
    start = format_event("message_start", {"type": "message_start", "message": {"model": "claude-haiku-5-5",
                                                                             "usage": {"input_tokens": 5}}})
    m.feed(start)
    m.feed(b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"')
    for _ in range(1000):  # 4 MB in one line, fed in 4 KiB pieces, never more than the limit held
        m.feed(b"a" * 4096)
        assert m._pending <= 64 * 1024
    m.feed(b'"}}\n\n')
    m.feed(format_event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                          "usage": {"output_tokens": 7}}))
    m.feed(format_event("message_stop", {"type": "message_stop"}))
    assert m.oversized == 1
    assert m.model == "claude-haiku-5-5" and m.usage.output_tokens == 7 and m.completed


def test_a_long_interesting_line_under_the_limit_is_still_parsed():
    sig = "s" * 200_000
    data = format_event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "signature_delta", "signature": sig}})
    m = _read(data, list(range(1000, len(data), 1000)))
    assert m.signatures == [sig] and m.oversized == 0
    assert orjson.loads(data.split(b"data: ")[1])["delta"]["signature"] == sig


def test_feeding_whole_chunks_reads_what_line_by_line_reading_reads():
    # feed() splits chunks into lines and holds partial ones; reading every line on its own
    # must give the same facts
    crlf = _stream().replace(b"\n", b"\r\n")
    err = format_event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    for data in _sources() + [crlf, _stream()[:-40] + err]:
        whole = _read(data, [])
        lines = StreamMeter()
        for line in data.split(b"\n"):
            lines._line(line)
        assert _facts(whole) == _facts(lines)
        assert (whole.first_token_at is None) == (lines.first_token_at is None)
        small = _read(data, [], max_line=64)  # long lines skipped, the rest read alike
        assert small.events == whole.events and small.completed == whole.completed
