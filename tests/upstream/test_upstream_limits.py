"""The Anthropic upstream's bounds: answer size, time to first byte, silence inside a stream."""

from __future__ import annotations

import asyncio
import resource

import pytest
from aiohttp import web

from tierwise.errors import UpstreamConnectionError, UpstreamTimeoutError
from tierwise.resilience.retry import retry_delay
from tierwise.upstream.anthropic import AnthropicUpstream


async def _serve(handlers: dict[str, object]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    for path, h in handlers.items():
        app.router.add_post(path, h)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def run(coro):
    return asyncio.run(coro)


def test_a_giant_answer_is_refused_without_being_held():
    sent = {"chunked": 0}

    async def with_length(request):
        resp = web.StreamResponse(headers={"content-type": "application/json", "content-length": str(500 * 1024 * 1024)})
        await resp.prepare(request)
        await resp.write(b"{" + b" " * 65535)
        await asyncio.sleep(2)  # never gets this far: refused from the header
        return resp

    async def chunked(request):
        resp = web.StreamResponse(headers={"content-type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for _ in range(500):  # 500 MiB if anyone read it all
                await resp.write(b" " * (1024 * 1024))
                sent["chunked"] += 1
        except (ConnectionResetError, RuntimeError):
            pass
        return resp

    async def main():
        runner, url = await _serve({"/len": with_length, "/chunked": chunked})
        up = AnthropicUpstream(url, "sk", max_response_bytes=4 * 1024 * 1024)
        try:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            for path in ("/len", "/chunked"):
                with pytest.raises(UpstreamConnectionError) as info:
                    await up.send(path, b"{}", headers={}, stream=False)
                assert "max_response_bytes" in info.value.message and info.value.status == 502
                assert retry_delay(502, info.value.headers, 0) is None  # not retried on the same target
            grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
            assert grown_mib < 100, grown_mib  # far below the 500 MiB offered
        finally:
            await up.aclose()
            await runner.cleanup()

    run(main())
    assert sent["chunked"] < 100  # the connection was dropped, not drained


def test_hanging_upstream_stream_times_out_at_first_byte_and_when_silent():
    async def hang(request):
        await asyncio.sleep(2)
        return web.Response(text="late")

    async def silent(request):
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"event: ping\ndata: {\"type\": \"ping\"}\n\n")
        await asyncio.sleep(2)
        return resp

    async def main():
        runner, url = await _serve({"/hang": hang, "/silent": silent})
        up = AnthropicUpstream(url, "sk", first_byte_timeout=0.3, stream_idle_timeout=0.3, timeout=0.5)
        try:
            with pytest.raises(UpstreamTimeoutError) as info:
                await up.send("/hang", b"{}", headers={}, stream=True)
            assert retry_delay(None, info.value.headers, 0) is not None  # a short wait: retried, as the SDK does
            import tierwise.upstream._http as http

            long_wait, http.LONG_WAIT = http.LONG_WAIT, 0.1
            try:
                with pytest.raises(UpstreamTimeoutError) as info:
                    await up.send("/hang", b"{}", headers={}, stream=False)
                assert retry_delay(None, info.value.headers, 0) is None  # a long wait: not retried on this target
            finally:
                http.LONG_WAIT = long_wait
            with pytest.raises(UpstreamTimeoutError):
                await up.send("/hang", b"{}", headers={}, stream=False)
            resp = await up.send("/silent", b"{}", headers={}, stream=True)
            got = []
            with pytest.raises(UpstreamTimeoutError):
                async for chunk in resp.chunks:  # type: ignore[union-attr]
                    got.append(chunk)
            assert got and b"ping" in got[0]
            await resp.aclose()
        finally:
            await up.aclose()
            await runner.cleanup()

    run(main())
