"""The Messages path's client (pyreqwest, upstream/_reqwest.py) keeps the aiohttp session's wire:
the same Accept-Encoding, no proxy read from the environment, transport failures in the one exception
tree, a whole answer in one piece and a stream chunk by chunk as it arrives."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from tests.upstream.test_upstream_limits import _serve
from tierwise.errors import UpstreamConnectionError
from tierwise.upstream.anthropic import AnthropicUpstream


def test_wire_headers_and_no_proxy_from_the_environment(monkeypatch):
    seen: dict[str, str] = {}

    async def echo(request):
        seen.update({k.lower(): v for k, v in request.headers.items()})
        return web.json_response({"type": "message", "usage": {"input_tokens": 1, "output_tokens": 1}},
                                 headers={"request-id": "req_x"})

    # a proxy that does not exist: read, it would make every call fail
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")

    async def main():
        runner, url = await _serve({"/v1/messages": echo})
        up = AnthropicUpstream(url, None)
        try:
            resp = await up.send("/v1/messages", b"{}", headers={"x-api-key": "sk-client", "x-app": "cli"}, stream=False)
            assert resp.status == 200 and resp.body is not None and b'"message"' in resp.body
            assert resp.headers["request-id"] == "req_x" and "content-length" not in resp.headers
        finally:
            await up.aclose()
            await runner.cleanup()

    asyncio.run(main())
    assert seen["accept-encoding"] == "gzip, deflate, br, zstd"  # gzip first, as tierwise always asked
    assert seen["x-api-key"] == "sk-client" and seen["x-app"] == "cli"
    assert seen["content-type"] == "application/json" and "x-tierwise-hop" in seen


def test_a_refused_connection_is_a_502():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed

    async def main():
        up = AnthropicUpstream(f"http://127.0.0.1:{port}", "sk", connect_timeout=2)
        try:
            for stream in (False, True):
                with pytest.raises(UpstreamConnectionError) as info:
                    await up.send("/v1/messages", b"{}", headers={}, stream=stream)
                assert info.value.status == 502
        finally:
            await up.aclose()

    asyncio.run(main())


def test_a_stream_arrives_chunk_by_chunk():
    gate = asyncio.Event()

    async def events(request):
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"event: one\ndata: {}\n\n")
        await gate.wait()  # the second event only once the first reached the reader
        await resp.write(b"event: two\ndata: {}\n\n")
        return resp

    async def main():
        runner, url = await _serve({"/v1/messages": events})
        up = AnthropicUpstream(url, "sk")
        try:
            resp = await up.send("/v1/messages", b"{}", headers={}, stream=True)
            got = []
            async for chunk in resp.chunks:  # type: ignore[union-attr]
                got.append(chunk)
                gate.set()
            assert b"".join(got) == b"event: one\ndata: {}\n\nevent: two\ndata: {}\n\n"
            assert b"one" in got[0] and b"two" not in got[0]
            await resp.aclose()
        finally:
            await up.aclose()
            await runner.cleanup()

    asyncio.run(main())
