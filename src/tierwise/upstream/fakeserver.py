"""A local server that speaks Anthropic's wire protocol, backed by the offline upstream.

Used by tests, benchmarks and demos as a stand-in for api.anthropic.com: the same paths,
headers (a fresh ``request-id`` per answer, ``anthropic-ratelimit-*`` on every answer, errors
included, ``retry-after`` on a 429), SSE framing and error bodies, the refusals of
``apirules``, ``GET /v1/models`` and ``/v1/models/{id}``; and it compresses like the API when the
request accepts it (gzip, deflate, br, zstd; streams flushed per write; ``compress=False`` turns
it off). It checks that a key was sent, and can replay a recorded SSE file byte for byte
(header ``x-fake-replay: <path>``) or inject faults (``x-tierwise-fault``).

Run it with ``tierwise fake-upstream --port 9999``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ..cost import Usage
from ..errors import APIError, UpstreamConnectionError, error_body
from .encoding import Encoder, choose
from .offline import OfflineUpstream, ratelimit_headers
from .sse import StreamMeter

__all__ = ["make_fake_app", "FakeAnthropic", "REQUESTS"]

REQUESTS: web.AppKey[list] = web.AppKey("requests", list)
USAGE: web.AppKey[list] = web.AppKey("usage", list)  # (model, Usage) of every answer actually delivered
ENCODINGS: web.AppKey[list] = web.AppKey("encodings", list)  # content-encoding of every answer (None: identity)
OFFLINE: web.AppKey[OfflineUpstream] = web.AppKey("offline", OfflineUpstream)  # answers, batches and files
# what a client may observe of the API's headers on errors, besides request-id and the rate limits
_ERROR_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")


def make_fake_app(*, latency_scale: float = 0.0, require_key: bool = True, replay_dir: str | None = None,
                  fault_rate: float = 0.0, fault_specs: tuple[str, ...] = (), seed: int = 0,
                  compress: bool = True) -> web.Application:
    offline = OfflineUpstream(latency_scale=latency_scale, fault_rate=fault_rate, fault_specs=fault_specs, seed=seed)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[REQUESTS] = []  # (path, headers, body) of every request, for assertions
    app[USAGE] = []
    app[OFFLINE] = offline
    app[ENCODINGS] = []
    prefix = "req_fake" + os.urandom(5).hex()
    counter = itertools.count(1)

    def new_id() -> str:
        return f"{prefix}{next(counter):08x}"

    def encoding_of(request: web.Request) -> str | None:
        return choose(request.headers.get("accept-encoding")) if compress else None

    def respond(request: web.Request, status: int, body: bytes, headers: dict[str, str],
                content_type: str = "application/json") -> web.Response:
        enc = encoding_of(request)
        app[ENCODINGS].append(enc)
        hdrs = dict(headers)
        if enc is not None:
            body = Encoder(enc).whole(body)
            hdrs["content-encoding"] = enc
        hdrs["vary"] = "accept-encoding"
        return web.Response(status=status, body=body, content_type=content_type, headers=hdrs)

    def err(request: web.Request, status: int, kind: str, message: str, extra: dict[str, str] | None = None) -> web.Response:
        rid = new_id()
        if status == 429 and "retry-after" not in (extra or {}):
            extra = dict(extra or {}, **{"retry-after": "1"})
        return respond(request, status, error_body(kind, message, rid),
                       {"request-id": rid, **ratelimit_headers(len(app[REQUESTS])), **(extra or {})})

    async def messages(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        hdrs = {k.lower(): v for k, v in request.headers.items()}
        app[REQUESTS].append((request.path_qs, hdrs, raw))
        if require_key and not (hdrs.get("x-api-key") or hdrs.get("authorization", "").lower().startswith("bearer ")):
            return err(request, 401, "authentication_error", "x-api-key header is required")
        if "anthropic-version" not in hdrs:
            return err(request, 400, "invalid_request_error", "anthropic-version: header is required")
        try:
            params = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return err(request, 400, "invalid_request_error", "There was an issue with the request body: not valid JSON")
        if not isinstance(params, dict) or (request.path == "/v1/messages" and "max_tokens" not in params):
            return err(request, 400, "invalid_request_error", "max_tokens: Field required")
        stream = bool(params.get("stream"))
        replay = hdrs.get("x-fake-replay")
        if replay and stream:
            path = Path(replay) if replay_dir is None else Path(replay_dir) / Path(replay).name
            resp, encoder = await start_stream(request, {"request-id": new_id(), **ratelimit_headers(len(app[REQUESTS]))})
            data = path.read_bytes()
            for i in range(0, len(data), 97):  # odd-sized chunks: the proxy must not care about boundaries
                await resp.write(encoder.chunk(data[i : i + 97]) if encoder else data[i : i + 97])
            if encoder:
                await resp.write(encoder.end())
            await resp.write_eof()
            return resp
        try:
            up = await offline.send(request.path_qs, raw, headers=hdrs, stream=stream, model=params.get("model"))
        except UpstreamConnectionError:  # injected reset: drop the connection, not a byte sent
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        except APIError as exc:
            rid = new_id()
            extra = {k: v for k, v in exc.headers.items() if k in _ERROR_HEADERS or k.startswith("anthropic-ratelimit-")}
            return respond(request, exc.status, error_body(exc.error_type, exc.message, rid), {"request-id": rid, **extra})
        headers = {"request-id": new_id(), **{k: v for k, v in up.headers.items() if k.startswith("anthropic-ratelimit-")}}
        if request.transport is None or request.transport.is_closing():
            return web.Response(status=499)  # the client gave up (e.g. timed out) before the answer
        if not stream:
            if request.path == "/v1/messages":
                msg = orjson.loads(up.body or b"{}")
                app[USAGE].append((msg.get("model"), Usage.from_api(msg.get("usage"))))
            return respond(request, 200, up.body or b"", headers)
        resp, encoder = await start_stream(request, headers)
        meter = StreamMeter()
        try:
            assert up.chunks is not None
            async for chunk in up.chunks:
                await resp.write(encoder.chunk(chunk) if encoder else chunk)
                meter.feed(chunk)
        except APIError:
            app[USAGE].append((meter.priced_model, meter.usage))
            # injected cut: drop the connection without finishing the chunked body
            if request.transport is not None:
                request.transport.close()
            return resp
        app[USAGE].append((meter.priced_model, meter.usage))
        if encoder:
            await resp.write(encoder.end())
        await resp.write_eof()
        return resp

    async def start_stream(request: web.Request, headers: dict[str, str]) -> tuple[web.StreamResponse, Encoder | None]:
        enc = encoding_of(request)
        app[ENCODINGS].append(enc)
        hdrs = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", **headers}
        if enc is not None:
            hdrs["content-encoding"] = enc
        resp = web.StreamResponse(status=200, headers=hdrs)
        await resp.prepare(request)
        return resp, (Encoder(enc) if enc is not None else None)

    def model_object(m: Any) -> dict[str, Any]:
        name = m.id.removeprefix("claude-").replace("-", " ").title()
        return {"type": "model", "id": m.id, "display_name": "Claude " + name, "created_at": "2026-10-07T00:00:00Z"}

    def served() -> list[Any]:
        from ..catalog import load_catalog

        return [m for m in load_catalog().listed() if not m.retired]

    def keyed(request: web.Request) -> bool:
        h = request.headers
        return not require_key or bool(h.get("x-api-key") or h.get("authorization", "").lower().startswith("bearer "))

    async def models(request: web.Request) -> web.Response:
        if not keyed(request):
            return err(request, 401, "authentication_error", "x-api-key header is required")
        data = [model_object(m) for m in served()]
        body = {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}
        return respond(request, 200, orjson.dumps(body), {"request-id": new_id()})

    async def model(request: web.Request) -> web.Response:
        if not keyed(request):
            return err(request, 401, "authentication_error", "x-api-key header is required")
        mid = request.match_info["model_id"]
        for m in served():
            if m.id == mid:
                return respond(request, 200, orjson.dumps(model_object(m)), {"request-id": new_id()})
        return err(request, 404, "not_found_error", f"model: {mid}")

    async def rest(request: web.Request) -> web.Response:
        """Message Batches and Files: the offline upstream's in-memory fake (``fake_batches``)."""
        raw = await request.read()
        hdrs = {k.lower(): v for k, v in request.headers.items()}
        app[REQUESTS].append((request.path_qs, hdrs, raw))
        if not keyed(request):
            return err(request, 401, "authentication_error", "x-api-key header is required")
        fake = offline.rest_fake()
        fake.base_url = f"{request.scheme}://{request.host}"
        status, out_headers, body = await fake.handle(request.method, request.path_qs, hdrs, raw)
        return respond(request, status, body, out_headers, out_headers.pop("content-type", "application/json"))

    for route in ("/v1/messages/batches", "/v1/messages/batches/{tail:.*}", "/v1/files", "/v1/files/{tail:.*}"):
        app.router.add_route("*", route, rest)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", messages)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model_id}", model)
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
    def rest(self) -> Any:
        """The in-memory Message Batches and Files (``fake_batches.FakeRest``)."""
        assert self.app is not None
        return self.app[OFFLINE].rest_fake()

    @property
    def requests(self) -> list[tuple[str, dict[str, str], bytes]]:
        """(path with its query, headers, body) of every Messages request received."""
        assert self.app is not None
        return self.app[REQUESTS]

    @property
    def encodings(self) -> list[str | None]:
        """The content-encoding of every answer sent (None: identity)."""
        assert self.app is not None
        return self.app[ENCODINGS]

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
