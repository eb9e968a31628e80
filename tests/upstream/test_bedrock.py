"""The Bedrock upstream against a local fake that checks SigV4 headers, paths and the body."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import struct
import threading
from typing import Any

import orjson
import pytest

pytest.importorskip("botocore", reason="botocore not installed (pip install 'tierwise[bedrock]')")

from aiohttp import web

from tierwise.errors import OverloadedError, RateLimitError
from tierwise.upstream.bedrock import BedrockUpstream
from tierwise.upstream.offline import parse_fault, stream_events, synthesize
from tierwise.upstream.sse import StreamMeter, format_event

PATH = re.compile(r"^/model/(?P<id>[^/]+)/(?P<action>invoke|invoke-with-response-stream)$")
# Bedrock Messages API ids: no version suffix, an optional inference-profile prefix
MESSAGES_ID = re.compile(r"^(?:(?:us|eu|apac|jp|au|global)\.)?anthropic\.claude-[a-z]+(?:-\d+)+$")


def _header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v


def eventstream_frame(payload: bytes, headers: dict[str, str]) -> bytes:
    """One AWS event-stream message (prelude, prelude CRC, headers, payload, message CRC)."""
    hdrs = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(hdrs) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hdrs))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    msg = prelude + hdrs + payload
    return msg + struct.pack(">I", binascii.crc32(msg) & 0xFFFFFFFF)


def chunk_frame(event: dict[str, Any]) -> bytes:
    payload = orjson.dumps({"bytes": base64.b64encode(orjson.dumps(event)).decode()})
    return eventstream_frame(payload, {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"})


# faults that are about Bedrock itself, as Bedrock sends them
_REFUSALS = {
    400: ("ValidationException", "The provided model identifier is invalid."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "Model not found in this region."),
}


class FakeBedrock:
    """A local stand-in for bedrock-runtime: verifies the request the way Bedrock would refuse it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.errors: list[str] = []
        self.port = 0
        self.api_key = "bedrock-api-key-for-tests"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        hdrs = {k.lower(): v for k, v in request.headers.items()}
        m = PATH.match(request.path)
        body = orjson.loads(raw) if raw else {}
        self.requests.append((request.path, hdrs, body))
        auth = hdrs.get("authorization", "")
        if not (auth.startswith("AWS4-HMAC-SHA256 Credential=") and "SignedHeaders=" in auth and "Signature=" in auth
                and "/bedrock/aws4_request" in auth and "x-amz-date" in hdrs):
            return web.json_response({"message": "missing or malformed SigV4 signature"}, status=403,
                                     headers={"x-amzn-ErrorType": "AccessDeniedException"})
        if m is None or "model" in body or body.get("anthropic_version") != "bedrock-2023-05-31":
            return web.json_response({"message": f"bad request {request.path}"}, status=400,
                                     headers={"x-amzn-ErrorType": "ValidationException"})
        fault = parse_fault(hdrs.get("x-tierwise-bedrock-fault"))
        if fault and fault.status in _REFUSALS:
            kind, message = _REFUSALS[fault.status]
            return web.json_response({"message": message}, status=fault.status, headers={"x-amzn-ErrorType": kind})
        if fault and fault.status == 429:
            return web.json_response({"message": "Too many requests"}, status=429, headers={"x-amzn-ErrorType": "ThrottlingException"})
        if fault and fault.status:
            return web.json_response({"message": "unavailable"}, status=503, headers={"x-amzn-ErrorType": "ServiceUnavailableException"})
        model = "claude-" + m.group("id").split("claude-", 1)[-1].rsplit("-v", 1)[0]
        msg = synthesize(dict(body, model=model))
        if m.group("action") == "invoke":
            return web.json_response(msg, headers={"x-amzn-RequestId": "fake-1"})
        resp = web.StreamResponse(status=200, headers={"content-type": "application/vnd.amazon.eventstream",
                                                       "x-amzn-RequestId": "fake-2"})
        await resp.prepare(request)
        for _, data, _ in stream_events(msg):
            await resp.write(chunk_frame(data))
        await resp.write_eof()
        return resp

    async def handle_messages(self, request: web.Request) -> web.StreamResponse:
        """``/anthropic/v1/messages``: Bedrock's Messages API (Opus 4.7 and later, every 5.x model)."""
        raw = await request.read()
        hdrs = {k.lower(): v for k, v in request.headers.items()}
        body = orjson.loads(raw) if raw else {}
        self.requests.append((request.path, hdrs, body))
        auth = hdrs.get("authorization", "")
        sigv4 = (auth.startswith("AWS4-HMAC-SHA256 Credential=") and "SignedHeaders=" in auth and "Signature=" in auth
                 and "/bedrock/aws4_request" in auth and "x-amz-date" in hdrs)
        bearer = auth.startswith("Bearer ") and auth[7:] == self.api_key
        if not (sigv4 or bearer):
            return web.json_response({"message": "missing or malformed credentials"}, status=403,
                                     headers={"x-amzn-ErrorType": "AccessDeniedException"})
        model = body.get("model")
        if (not isinstance(model, str) or not MESSAGES_ID.match(model) or "anthropic_version" in body
                or not hdrs.get("anthropic-version")):
            return web.json_response({"message": "The provided model identifier is invalid."}, status=400,
                                     headers={"x-amzn-ErrorType": "ValidationException"})
        if "messages" not in body or "max_tokens" not in body:
            return web.json_response({"type": "error", "error": {"type": "invalid_request_error",
                                                                 "message": "messages: field required"}}, status=400)
        fault = parse_fault(hdrs.get("x-tierwise-bedrock-fault"))
        if fault and fault.status in _REFUSALS:
            kind, message = _REFUSALS[fault.status]
            return web.json_response({"message": message}, status=fault.status, headers={"x-amzn-ErrorType": kind})
        if fault and fault.status == 429:
            return web.json_response({"message": "Too many requests"}, status=429, headers={"x-amzn-ErrorType": "ThrottlingException"})
        if fault and fault.status:
            return web.json_response({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                                     status=529)
        msg = synthesize(dict(body, model="claude-" + model.split("claude-", 1)[-1]))
        msg["model"] = model  # Bedrock names its own id
        if not body.get("stream"):
            return web.json_response(msg, headers={"x-amzn-RequestId": "fake-3"})
        resp = web.StreamResponse(status=200, headers={"content-type": "text/event-stream", "x-amzn-RequestId": "fake-4"})
        await resp.prepare(request)
        for event, data, _ in stream_events(msg):
            await resp.write(format_event(event, data))
        await resp.write_eof()
        return resp

    def __enter__(self) -> "FakeBedrock":
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/model/{tail:.*}", self.handle)
            app.router.add_post("/anthropic/v1/messages", self.handle_messages)
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
def fake_bedrock():
    with FakeBedrock() as fb:
        yield fb


def _creds():
    from botocore.credentials import Credentials

    return Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


IDS = {"claude-haiku-5-5": "anthropic.claude-haiku-5-5-v1:0"}
BODY = orjson.dumps({"model": "claude-haiku-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]})


async def test_invoke_signed_and_translated(fake_bedrock):
    up = BedrockUpstream("us-east-1", model_ids=IDS, endpoint_url=fake_bedrock.url, credentials=_creds())
    try:
        resp = await up.send("/v1/messages", BODY, headers={"anthropic-beta": "a-1,b-2"}, stream=False, model="claude-haiku-5-5")
    finally:
        await up.aclose()
    msg = orjson.loads(resp.body)
    assert resp.status == 200 and msg["model"] == "claude-haiku-5-5" and msg["usage"]["input_tokens"] > 0
    path, hdrs, body = fake_bedrock.requests[-1]
    assert path == "/model/anthropic.claude-haiku-5-5-v1:0/invoke"
    assert hdrs["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "x-amz-date" in hdrs and "model" not in body and body["anthropic_beta"] == ["a-1", "b-2"]
    assert "wJalrXUtnFEMI" not in repr(up) and "wJalrXUtnFEMI" not in repr(fake_bedrock.requests)


async def test_stream_reframed_as_anthropic_sse(fake_bedrock):
    up = BedrockUpstream("us-east-1", model_ids=IDS, endpoint_url=fake_bedrock.url, credentials=_creds(), model_prefix="us.")
    try:
        resp = await up.send("/v1/messages", BODY, headers={}, stream=True, model="claude-haiku-5-5")
        meter = StreamMeter()
        raw = b""
        async for chunk in resp.chunks:
            meter.feed(chunk)
            raw += chunk
        await resp.aclose()
    finally:
        await up.aclose()
    assert fake_bedrock.requests[-1][0] == "/model/us.anthropic.claude-haiku-5-5-v1:0/invoke-with-response-stream"
    assert raw.startswith(b"event: message_start\ndata: ") and meter.completed and meter.usage.output_tokens > 1
    assert meter.model == "claude-haiku-5-5"


async def test_errors_map_to_anthropic_classes(fake_bedrock):
    up = BedrockUpstream("us-east-1", model_ids=IDS, endpoint_url=fake_bedrock.url, credentials=_creds())
    try:
        with pytest.raises(RateLimitError):
            await up.send("/v1/messages", BODY, headers={"x-tierwise-bedrock-fault": "status=429"}, stream=False,
                          model="claude-haiku-5-5")
        with pytest.raises(OverloadedError) as exc:
            await up.send("/v1/messages", BODY, headers={"x-tierwise-bedrock-fault": "status=503"}, stream=False,
                          model="claude-haiku-5-5")
        assert "bedrock" in exc.value.message
    finally:
        await up.aclose()


# ---------------------------------------------------------------- Bedrock's Messages API (5.x models)
NEW = {"claude-sonnet-5-5": "anthropic.claude-sonnet-5-5"}
NEW_API = {"claude-sonnet-5-5": "messages"}
SONNET = orjson.dumps({"model": "claude-sonnet-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]})


@pytest.mark.parametrize("auth", ["sigv4", "api_key"])
async def test_messages_api_path_body_and_auth(fake_bedrock, auth):
    kw = {"credentials": _creds()} if auth == "sigv4" else {"api_key": fake_bedrock.api_key}
    up = BedrockUpstream("us-east-1", model_ids=NEW, apis=NEW_API, endpoint_url=fake_bedrock.url, model_prefix="global.", **kw)
    try:
        resp = await up.send("/v1/messages", SONNET, headers={"anthropic-version": "2023-06-01", "anthropic-beta": "x-1"},
                             stream=False, model="claude-sonnet-5-5")
    finally:
        await up.aclose()
    path, hdrs, body = fake_bedrock.requests[-1]
    assert path == "/anthropic/v1/messages"
    assert body["model"] == "global.anthropic.claude-sonnet-5-5" and "anthropic_version" not in body
    assert hdrs["anthropic-version"] == "2023-06-01" and hdrs["anthropic-beta"] == "x-1"
    if auth == "sigv4":
        assert hdrs["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "anthropic-version" in hdrs["authorization"].split("SignedHeaders=")[1].split(",")[0]
    else:
        assert hdrs["authorization"] == "Bearer " + fake_bedrock.api_key and fake_bedrock.api_key not in repr(up)
    msg = orjson.loads(resp.body)
    assert msg["model"] == "claude-sonnet-5-5" and msg["usage"]["output_tokens"] > 0  # priced by the catalog id


async def test_mantle_endpoint_serves_the_same_messages_api(fake_bedrock):
    """bedrock-mantle: the same /anthropic/v1/messages path, Bedrock id in the body, a Bedrock API key as Bearer."""
    up = BedrockUpstream("eu-west-1", model_ids=NEW, apis=NEW_API, endpoint="mantle", endpoint_url=fake_bedrock.url,
                         model_prefix="us.", api_key=fake_bedrock.api_key)
    try:
        resp = await up.send("/v1/messages", SONNET, headers={"anthropic-version": "2023-06-01"}, stream=False,
                             model="claude-sonnet-5-5")
    finally:
        await up.aclose()
    path, hdrs, body = fake_bedrock.requests[-1]
    assert up.endpoint_kind == "mantle" and path == "/anthropic/v1/messages"
    assert body["model"] == "us.anthropic.claude-sonnet-5-5" and hdrs["authorization"] == "Bearer " + fake_bedrock.api_key
    assert orjson.loads(resp.body)["model"] == "claude-sonnet-5-5"


async def test_mantle_refuses_an_invoke_model_clearly_without_calling(fake_bedrock):
    from tierwise.errors import NotFoundError

    up = BedrockUpstream("eu-west-1", model_ids=IDS, endpoint="mantle", endpoint_url=fake_bedrock.url,
                         api_key=fake_bedrock.api_key)
    seen = len(fake_bedrock.requests)
    try:
        with pytest.raises(NotFoundError, match=r"InvokeModel.*bedrock-mantle.*endpoint = \"runtime\""):
            await up.send("/v1/messages", BODY, headers={}, stream=False, model="claude-haiku-5-5")
    finally:
        await up.aclose()
    assert len(fake_bedrock.requests) == seen


async def test_messages_api_stream_is_plain_sse_named_by_catalog_id(fake_bedrock):
    up = BedrockUpstream("us-east-1", model_ids=NEW, apis=NEW_API, endpoint_url=fake_bedrock.url, credentials=_creds())
    try:
        body = orjson.dumps(dict(orjson.loads(SONNET), stream=True))
        resp = await up.send("/v1/messages", body, headers={}, stream=True, model="claude-sonnet-5-5")
        meter, raw = StreamMeter(), b""
        async for chunk in resp.chunks:
            meter.feed(chunk)
            raw += chunk
        await resp.aclose()
    finally:
        await up.aclose()
    assert fake_bedrock.requests[-1][2]["stream"] is True
    assert raw.startswith(b"event: message_start") and meter.completed and meter.model == "claude-sonnet-5-5"


async def test_messages_api_refusals_and_overload_map_to_anthropic_classes(fake_bedrock):
    from tierwise.errors import InvalidRequestError, PermissionDeniedError

    up = BedrockUpstream("us-east-1", model_ids=NEW, apis=NEW_API, endpoint_url=fake_bedrock.url, credentials=_creds())
    try:
        with pytest.raises(OverloadedError):
            await up.send("/v1/messages", SONNET, headers={"x-tierwise-bedrock-fault": "status=529"}, stream=False,
                          model="claude-sonnet-5-5")
        with pytest.raises(PermissionDeniedError):
            await up.send("/v1/messages", SONNET, headers={"x-tierwise-bedrock-fault": "status=403"}, stream=False,
                          model="claude-sonnet-5-5")
        old = BedrockUpstream("us-east-1", model_ids={"claude-sonnet-5-5": "anthropic.claude-sonnet-5-5-v1:0"}, apis=NEW_API,
                              endpoint_url=fake_bedrock.url, credentials=_creds())
        with pytest.raises(InvalidRequestError):  # the old versioned id is what Bedrock refuses
            await old.send("/v1/messages", SONNET, headers={}, stream=False, model="claude-sonnet-5-5")
        await old.aclose()
    finally:
        await up.aclose()


def test_the_shipped_catalog_sends_5x_models_through_the_messages_api(settings):
    from tierwise.upstream.bedrock import build_bedrock

    up = build_bedrock({"region": "eu-west-1", "endpoint": "mantle"}, settings.catalog)
    for tier in settings.catalog.tier_order:
        mid = settings.catalog.tiers[tier]
        assert up.api(mid) == "messages" and MESSAGES_ID.match(up.bedrock_id(mid)), mid
    assert up.api("claude-sonnet-4-5") == "invoke" and up.bedrock_id("claude-sonnet-4-5").endswith("-v1:0")
    assert up.endpoint == "https://bedrock-mantle.eu-west-1.api.aws"
    assert build_bedrock({"region": "us-west-2"}, settings.catalog).endpoint == "https://bedrock-runtime.us-west-2.amazonaws.com"
