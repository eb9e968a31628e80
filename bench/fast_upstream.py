"""A minimal, very fast fake Anthropic upstream for benchmarks (raw asyncio + httptools + uvloop).

Answers every POST /v1/messages with a canned Message (or, when the body asks for
``"stream": true``, a canned SSE stream with the real event sequence), so the proxy is
measured, not the fake. Run: python bench/fast_upstream.py PORT [gzip]

With ``gzip`` it compresses like api.anthropic.com whenever the request's Accept-Encoding allows
it (``content-encoding: gzip``; the stream flushed after every event, as a streaming server does);
the compressed answers are made once at start-up, so the fake stays as fast as the plain one.
"""

from __future__ import annotations

import asyncio
import sys
import zlib

import httptools
import orjson

MESSAGE = orjson.dumps({
    "id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-haiku-5-5",
    "content": [{"type": "text", "text": "benchmark answer " * 8}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 42, "output_tokens": 30, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
})
_EVENTS = [
    ("message_start", {"type": "message_start", "message": {"id": "msg_bench", "type": "message", "role": "assistant",
                                                            "model": "claude-haiku-5-5", "content": [], "stop_reason": None,
                                                            "usage": {"input_tokens": 42, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    *[("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "benchmark "}})] * 8,
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 30}}),
    ("message_stop", {"type": "message_stop"}),
]
SSE = b"".join(b"event: " + n.encode() + b"\ndata: " + orjson.dumps(d) + b"\n\n" for n, d in _EVENTS)

JSON_RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: req_bench\r\ncontent-length: "
                 + str(len(MESSAGE)).encode() + b"\r\n\r\n" + MESSAGE)
SSE_RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nrequest-id: req_bench\r\ntransfer-encoding: chunked\r\n\r\n"
                + hex(len(SSE))[2:].encode() + b"\r\n" + SSE + b"\r\n0\r\n\r\n")


def _gzip_stream(events: list[bytes]) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return b"".join(c.compress(e) + c.flush(zlib.Z_SYNC_FLUSH) for e in events) + c.flush()


GZ_MESSAGE = _gzip_stream([MESSAGE])
GZ_SSE = _gzip_stream([b"event: " + n.encode() + b"\ndata: " + orjson.dumps(d) + b"\n\n" for n, d in _EVENTS])
GZ_JSON_RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: req_bench\r\ncontent-encoding: gzip\r\n"
                    b"content-length: " + str(len(GZ_MESSAGE)).encode() + b"\r\n\r\n" + GZ_MESSAGE)
GZ_SSE_RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nrequest-id: req_bench\r\ncontent-encoding: gzip\r\n"
                   b"transfer-encoding: chunked\r\n\r\n" + hex(len(GZ_SSE))[2:].encode() + b"\r\n" + GZ_SSE + b"\r\n0\r\n\r\n")
GZIP = False  # set by main(): compress when the request accepts gzip


class Handler(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.body = b""

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.body = b""
        self.gzip = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if GZIP and name.lower() == b"accept-encoding" and b"gzip" in value.lower():
            self.gzip = True

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        stream = b'"stream":true' in self.body or b'"stream": true' in self.body
        if self.gzip:
            self.transport.write(GZ_SSE_RESPONSE if stream else GZ_JSON_RESPONSE)  # type: ignore[attr-defined]
        else:
            self.transport.write(SSE_RESPONSE if stream else JSON_RESPONSE)  # type: ignore[attr-defined]


def main() -> None:
    global GZIP
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9100
    GZIP = len(sys.argv) > 2 and sys.argv[2] == "gzip"
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(Handler, "127.0.0.1", port, backlog=1024))
    print(f"fast fake upstream on {port}{' (gzip)' if GZIP else ''}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
