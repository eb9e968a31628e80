"""The Vertex AI upstream against a local fake that answers as Vertex does (path, bearer token, body)."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import httpx2
import orjson
import pytest
from aiohttp import web

from tierwise.errors import AuthenticationError, NotFoundError, OverloadedError
from tierwise.upstream.offline import parse_fault, stream_events, synthesize
from tierwise.upstream.sse import StreamMeter, format_event
from tierwise.upstream.vertex import VERTEX_VERSION, VertexUpstream

PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/publishers/anthropic/models/"
                  r"(?P<model>[^/:]+):(?P<verb>rawPredict|streamRawPredict)$")
TOKEN = "ya29.fake-vertex-token"


class FakeVertex:
    """A local stand-in for aiplatform.googleapis.com's Claude endpoints; refuses what Vertex refuses."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        hdrs = {k.lower(): v for k, v in request.headers.items()}
        body = orjson.loads(raw) if raw else {}
        self.requests.append((request.path, hdrs, body))
        if hdrs.get("authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                                "status": "UNAUTHENTICATED"}}, status=401)
        m = PATH.match(request.path)
        if m is None:
            return web.json_response({"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}, status=404)
        if m.group("model") == "count-tokens":
            return web.json_response({"input_tokens": 7})
        if "model" in body or body.get("anthropic_version") != VERTEX_VERSION:
            return web.json_response({"type": "error", "error": {"type": "invalid_request_error",
                                                                 "message": "anthropic_version: vertex-2023-10-16 required; "
                                                                            "model: not allowed"}}, status=400)
        if (m.group("verb") == "streamRawPredict") != bool(body.get("stream")):
            return web.json_response({"type": "error", "error": {"type": "invalid_request_error",
                                                                 "message": "stream and verb disagree"}}, status=400)
        fault = parse_fault(hdrs.get("x-tierwise-vertex-fault"))
        if fault and fault.status:
            return web.json_response({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                                     status=529)
        msg = synthesize(dict(body, model=m.group("model").split("@")[0]))
        msg["model"] = m.group("model")
        if not body.get("stream"):
            return web.json_response(msg)
        resp = web.StreamResponse(status=200, headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for event, data, _ in stream_events(msg):
            await resp.write(format_event(event, data))
        await resp.write_eof()
        return resp

    def __enter__(self) -> "FakeVertex":
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/{tail:.*}", self.handle)
            runner = web.AppRunner(app, access_log=None)

            async def start() -> None:
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                self._ready.set()

            self._loop.run_until_complete(start())
            self._loop.run_forever()
            self._loop.run_until_complete(runner.cleanup())

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def fake_vertex():
    with FakeVertex() as fv:
        yield fv


BODY = {"model": "claude-sonnet-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]}


def _up(fake, **kw):
    return VertexUpstream("my-proj", "us-east5", endpoint_url=fake.url, token=TOKEN, **kw)


async def test_raw_predict_path_token_and_body(fake_vertex):
    up = _up(fake_vertex, model_ids={"claude-sonnet-4-5": "claude-sonnet-4-5@20250929"})
    try:
        resp = await up.send("/v1/messages", orjson.dumps(BODY), headers={"anthropic-beta": "b-1"}, stream=False,
                             model="claude-sonnet-5-5")
        path, hdrs, body = fake_vertex.requests[-1]
        assert path == "/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-5-5:rawPredict"
        assert "model" not in body and body["anthropic_version"] == VERTEX_VERSION and hdrs["anthropic-beta"] == "b-1"
        assert orjson.loads(resp.body)["model"] == "claude-sonnet-5-5"
        await up.send("/v1/messages", orjson.dumps(dict(BODY, model="claude-sonnet-4-5")), headers={}, stream=False,
                      model="claude-sonnet-4-5")
        assert fake_vertex.requests[-1][0].endswith("/models/claude-sonnet-4-5@20250929:rawPredict")
        ct = await up.send("/v1/messages/count_tokens", orjson.dumps({"model": "claude-sonnet-5-5", "messages": BODY["messages"]}),
                           headers={}, stream=False, model="claude-sonnet-5-5")
        path, _, body = fake_vertex.requests[-1]
        assert path.endswith("/models/count-tokens:rawPredict") and body["model"] == "claude-sonnet-5-5"
        assert orjson.loads(ct.body) == {"input_tokens": 7}
    finally:
        await up.aclose()
    assert TOKEN not in repr(up)


async def test_stream_raw_predict_is_metered_under_the_catalog_id(fake_vertex):
    up = _up(fake_vertex, model_ids={"claude-sonnet-5-5": "claude-sonnet-5-5@20261007"})
    try:
        resp = await up.send("/v1/messages", orjson.dumps(dict(BODY, stream=True)), headers={}, stream=True,
                             model="claude-sonnet-5-5")
        meter = StreamMeter()
        async for chunk in resp.chunks:
            meter.feed(chunk)
        await resp.aclose()
    finally:
        await up.aclose()
    assert fake_vertex.requests[-1][0].endswith("/models/claude-sonnet-5-5@20261007:streamRawPredict")
    assert meter.completed and meter.model == "claude-sonnet-5-5" and meter.usage.output_tokens > 1


async def test_errors_and_token_sources(fake_vertex, monkeypatch):
    up = VertexUpstream("my-proj", "global", endpoint_url=fake_vertex.url, token="wrong")
    try:
        with pytest.raises(AuthenticationError) as exc:
            await up.send("/v1/messages", orjson.dumps(BODY), headers={}, stream=False, model="claude-sonnet-5-5")
        assert "vertex" in exc.value.message and exc.value.to_body().startswith(b'{"type":"error"')
    finally:
        await up.aclose()
    up = VertexUpstream("my-proj", "global", endpoint_url=fake_vertex.url, token_env="TW_VERTEX_TOKEN",
                        environ={"TW_VERTEX_TOKEN": TOKEN}, models={"claude-sonnet-5-5"})
    try:
        with pytest.raises(OverloadedError):
            await up.send("/v1/messages", orjson.dumps(BODY), headers={"x-tierwise-vertex-fault": "status=529"},
                          stream=False, model="claude-sonnet-5-5")
        resp = await up.send("/v1/messages", orjson.dumps(BODY), headers={}, stream=False, model="claude-sonnet-5-5")
        assert resp.status == 200 and "/locations/global/" in fake_vertex.requests[-1][0]
        with pytest.raises(NotFoundError):
            await up.send("/v1/messages", orjson.dumps(dict(BODY, model="claude-haiku-5-5")), headers={}, stream=False,
                          model="claude-haiku-5-5")
    finally:
        await up.aclose()
    assert VertexUpstream("p", "global").endpoint == "https://aiplatform.googleapis.com"
    assert VertexUpstream("p", "europe-west1").endpoint == "https://europe-west1-aiplatform.googleapis.com"


def test_fallback_chain_names_vertex_after_bedrock(fake_anthropic, fake_vertex, proxy_factory, monkeypatch):
    """Primary 529, Bedrock 503, then Vertex answers: each upstream named in the row's attempts."""
    pytest.importorskip("botocore")
    from ..upstream.test_bedrock import FakeBedrock

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("TW_VERTEX_TOKEN", TOKEN)
    from ..server.test_faults import attempts
    from ..server.test_sdk_end_to_end import ledger_rows

    with FakeBedrock() as fb:
        proxy = proxy_factory(fake_anthropic.url, resilience={
            "fallbacks": {"fast": ["bedrock", "vertex", "next_tier"]}, "retries_per_target": 0, "max_attempts": 4,
            "bedrock": {"enabled": True, "endpoint_url": fb.url},
            "vertex": {"enabled": True, "project": "my-proj", "region": "us-east5", "endpoint_url": fake_vertex.url,
                       "token_env": "TW_VERTEX_TOKEN"}})
        body = dict(BODY, model="tierwise/classify_intent")
        r = httpx2.post(proxy.url + "/v1/messages", json=body, timeout=10, headers={
            "anthropic-version": "2023-06-01", "x-api-key": "sk-x", "x-tierwise-fault": "status=529",
            "x-tierwise-bedrock-fault": "status=503"})
        assert r.status_code == 200 and r.headers["x-tierwise-upstream"] == "vertex", r.text[:300]
        row = ledger_rows(proxy)[-1]
        assert [(a["upstream"], a["model"], a["status"]) for a in attempts(row)] == [
            ("anthropic", "claude-haiku-5-5", 529), ("bedrock", "claude-haiku-5-5", 529), ("vertex", "claude-haiku-5-5", 200)]
        assert row["cost_nanos"] > 0


def test_a_fallback_naming_an_unconfigured_upstream_is_refused_at_start(settings):
    from tierwise.config import load_settings
    from tierwise.errors import ConfigError
    from tierwise.resilience import Runtime
    from tierwise.upstream.offline import OfflineUpstream

    s = load_settings(None, overrides={"ledger": {"url": "sqlite://"}, "resilience": {"fallbacks": {"fast": ["vertex"]}}},
                      environ={})
    with pytest.raises(ConfigError, match="vertex"):
        Runtime(s, OfflineUpstream(), None)
