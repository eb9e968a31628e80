"""A local server that speaks Anthropic's wire protocol, backed by the offline upstream.

Used by tests, benchmarks and demos as a stand-in for api.anthropic.com: the same paths,
headers (``request-id``, ``anthropic-ratelimit-*``), SSE framing and error bodies. It checks
that a key was sent, and can replay a recorded SSE file byte for byte
(header ``x-fake-replay: <path>``) or inject faults (``x-tierwise-fault``).

Run it with ``tierwise fake-upstream --port 9999``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ..cost import Usage
from ..errors import APIError, UpstreamConnectionError, error_body
from .offline import OfflineUpstream
from .sse import StreamMeter

__all__ = ["make_fake_app", "FakeAnthropic", "REQUESTS"]

REQUESTS: web.AppKey[list] = web.AppKey("requests", list)
USAGE: web.AppKey[list] = web.AppKey("usage", list)  # (model, Usage) of every answer actually delivered

RATELIMIT = {
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": "3999",
    "anthropic-ratelimit-tokens-limit": "2000000",
    "anthropic-ratelimit-tokens-remaining": "1999000",
}


def make_fake_app(*, latency_scale: float = 0.0, require_key: bool = True, replay_dir: str | None = None,
                  fault_rate: float = 0.0, fault_specs: tuple[str, ...] = (), seed: int = 0) -> web.Application:
    offline = OfflineUpstream(latency_scale=latency_scale, fault_rate=fault_rate, fault_specs=fault_specs, seed=seed)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[REQUESTS] = []  # (path, headers, body) of every request, for assertions
    app[USAGE] = []

    def err(status: int, kind: str, message: str, extra: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=status, body=error_body(kind, message, "req_fake_error"),
                            content_type="application/json", headers={"request-id": "req_fake_error", **(extra or {})})

    async def messages(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        hdrs = {k.lower(): v for k, v in request.headers.items()}
        app[REQUESTS].append((request.path, hdrs, raw))
        if require_key and not (hdrs.get("x-api-key") or hdrs.get("authorization", "").lower().startswith("bearer ")):
            return err(401, "authentication_error", "x-api-key header is required")
        if "anthropic-version" not in hdrs:
            return err(400, "invalid_request_error", "anthropic-version: header is required")
        try:
            params = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return err(400, "invalid_request_error", "There was an issue with the request body: not valid JSON")
        if not isinstance(params, dict) or (request.path == "/v1/messages" and "max_tokens" not in params):
            return err(400, "invalid_request_error", "max_tokens: Field required")
        stream = bool(params.get("stream"))
        replay = hdrs.get("x-fake-replay")
        if replay and stream:
            path = Path(replay) if replay_dir is None else Path(replay_dir) / Path(replay).name
            resp = web.StreamResponse(status=200, headers={"content-type": "text/event-stream; charset=utf-8",
                                                            "request-id": "req_fake_replay", **RATELIMIT})
            await resp.prepare(request)
            data = path.read_bytes()
            for i in range(0, len(data), 97):  # odd-sized chunks: the proxy must not care about boundaries
                await resp.write(data[i : i + 97])
            await resp.write_eof()
            return resp
        try:
            up = await offline.send(request.path, raw, headers=hdrs, stream=stream, model=params.get("model"))
        except UpstreamConnectionError:  # injected reset: drop the connection, not a byte sent
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        except APIError as exc:
            extra = {k: v for k, v in exc.headers.items() if k in ("retry-after", "retry-after-ms", "x-should-retry")}
            return web.Response(status=exc.status, body=exc.to_body("req_fake_error"), content_type="application/json",
                                headers={"request-id": "req_fake_error", **extra})
        headers = {"request-id": up.headers["request-id"].replace("offline", "fake"), **RATELIMIT}
        if request.transport is None or request.transport.is_closing():
            return web.Response(status=499)  # the client gave up (e.g. timed out) before the answer
        if not stream:
            if request.path == "/v1/messages":
                msg = orjson.loads(up.body or b"{}")
                app[USAGE].append((msg.get("model"), Usage.from_api(msg.get("usage"))))
            return web.Response(status=200, body=up.body, content_type="application/json", headers=headers)
        resp = web.StreamResponse(status=200, headers={"content-type": "text/event-stream; charset=utf-8", **headers})
        await resp.prepare(request)
        meter = StreamMeter()
        try:
            assert up.chunks is not None
            async for chunk in up.chunks:
                await resp.write(chunk)
                meter.feed(chunk)
        except APIError:
            app[USAGE].append((meter.priced_model, meter.usage))
            # injected cut: drop the connection without finishing the chunked body
            if request.transport is not None:
                request.transport.close()
            return resp
        app[USAGE].append((meter.priced_model, meter.usage))
        await resp.write_eof()
        return resp

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [], "has_more": False, "first_id": None, "last_id": None})

    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", messages)
    app.router.add_get("/v1/models", models)
    return app


class FakeAnthropic:
    """Run the fake server on a background thread: ``with FakeAnthropic() as fake: fake.url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.host = host
        self.port = port
        self.options = options
        self.app: web.Application | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def usage(self) -> list[tuple[str | None, Usage]]:
        assert self.app is not None
        return self.app[USAGE]

    @property
    def requests(self) -> list[tuple[str, dict[str, str], bytes]]:
        assert self.app is not None
        return self.app[REQUESTS]

    def __enter__(self) -> "FakeAnthropic":
        self._thread = threading.Thread(target=self._run, name="fake-anthropic", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Anthropic server did not start")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self.app = make_fake_app(**self.options)
            self._runner = web.AppRunner(self.app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())  # type: ignore[union-attr]
        self._loop.close()

    def __exit__(self, *exc: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
