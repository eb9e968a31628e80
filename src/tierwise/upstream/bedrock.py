"""Amazon Bedrock as an upstream, both ways Bedrock serves Claude.

**Messages API** ("Claude in Amazon Bedrock": Opus 4.7 and later, every 5.x model): Bedrock serves
the Messages API itself at ``https://bedrock-runtime.{region}.amazonaws.com/anthropic/v1/messages``
(``endpoint = "runtime"``) or ``https://bedrock-mantle.{region}.api.aws/anthropic/v1/messages``
(``endpoint = "mantle"``). The body is the Messages body with ``model`` set to the Bedrock id
(``anthropic.claude-sonnet-5-5``: no version suffix, with an optional inference-profile prefix
such as ``us.`` or ``global.``), ``anthropic-version`` / ``anthropic-beta`` stay headers, and the
answer is plain Anthropic JSON or SSE. Auth: SigV4 (botocore) or a Bedrock API key sent as
``Authorization: Bearer`` (``auth = "api_key"``, the key in ``$AWS_BEARER_TOKEN_BEDROCK``).

**InvokeModel** (older models, Opus 4.6 and earlier; ids like
``anthropic.claude-sonnet-4-5-20250929-v1:0``): ``/model/{id}/invoke``, adapted the way Anthropic's
own ``AnthropicBedrock`` client does it: ``model`` moves into the path, ``stream`` picks
``/invoke-with-response-stream``, ``anthropic_version`` becomes ``bedrock-2023-05-31`` and
``anthropic-beta`` headers become ``anthropic_beta``. Its streams are AWS event-stream frames whose
``chunk`` events carry base64 JSON of the Anthropic events; they are re-framed as Anthropic SSE.

Which path a model takes is the catalog's ``bedrock_api`` (``messages`` or ``invoke``, the
default). Either way the answer names the catalog's model id, so it is priced like any other.
botocore is imported lazily (``pip install 'tierwise[bedrock]'``), and not at all with an API key.
"""

from __future__ import annotations

import base64
from typing import Any, AsyncIterator, Mapping
from urllib.parse import quote

import aiohttp
import orjson

from ..errors import (
    InvalidRequestError,
    NotFoundError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    error_body,
    error_for_status,
)
from ..jsonbody import dumps as dumps_body
from ._http import post, read_body, read_error_body
from .base import UpstreamResponse
from .sse import format_event

__all__ = ["BedrockUpstream", "bedrock_body", "BEDROCK_VERSION", "rename_stream_model"]

BEDROCK_VERSION = "bedrock-2023-05-31"

# Bedrock's error types -> (HTTP status, Anthropic error type)
_AWS_ERRORS = {
    "ThrottlingException": (429, "rate_limit_error"),
    "ServiceUnavailableException": (529, "overloaded_error"),
    "ModelNotReadyException": (529, "overloaded_error"),
    "ModelTimeoutException": (504, "timeout_error"),
    "InternalServerException": (500, "api_error"),
    "ValidationException": (400, "invalid_request_error"),
    "AccessDeniedException": (403, "permission_error"),
    "ResourceNotFoundException": (404, "not_found_error"),
    "ModelErrorException": (500, "api_error"),
}


def bedrock_body(body: bytes, headers: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    """The Bedrock invoke body for a Messages API body, and the model it named."""
    params = orjson.loads(body)
    if not isinstance(params, dict):
        raise InvalidRequestError("request body must be a JSON object")
    model = params.pop("model", None)
    params.pop("stream", None)
    params["anthropic_version"] = BEDROCK_VERSION
    beta = headers.get("anthropic-beta")
    if beta:
        params["anthropic_beta"] = [b.strip() for b in beta.split(",") if b.strip()]
    return params, model


def messages_body(body: bytes, bedrock_id: str) -> bytes:
    """The Messages API body for Bedrock's Messages endpoint: the same body, ``model`` = the Bedrock id."""
    params = orjson.loads(body)
    if not isinstance(params, dict):
        raise InvalidRequestError("request body must be a JSON object")
    params["model"] = bedrock_id
    return dumps_body(params)


async def rename_stream_model(chunks: AsyncIterator[bytes], model_id: str) -> AsyncIterator[bytes]:
    """An SSE stream with ``message_start``'s model set to ``model_id`` (the catalog id, so the
    meter prices it); everything after the first event passes through untouched."""
    head = b""
    async for chunk in chunks:
        if head is None:
            yield chunk
            continue
        head += chunk
        end = head.find(b"\n\n")
        if end < 0 and len(head) < 1 << 20:
            continue
        first, rest = (head[:end + 2], head[end + 2:]) if end >= 0 else (head, b"")
        head = None  # type: ignore[assignment]
        yield _renamed(first, model_id) + rest
    if head:
        yield _renamed(head, model_id)


def _renamed(event: bytes, model_id: str) -> bytes:
    lines = event.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"data:"):
            try:
                obj = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                return event
            if isinstance(obj, dict) and obj.get("type") == "message_start" and isinstance(obj.get("message"), dict):
                obj["message"]["model"] = model_id
                lines[i] = b"data: " + orjson.dumps(obj)
                return b"\n".join(lines)
            return event
    return event


class BedrockUpstream:
    name = "bedrock"

    def __init__(self, region: str = "us-east-1", *, model_ids: Mapping[str, str], endpoint_url: str = "",
                 model_prefix: str = "", timeout: float = 600.0, connect_timeout: float = 10.0,
                 max_connections: int = 256, credentials: Any = None, apis: Mapping[str, str] | None = None,
                 endpoint: str = "runtime", api_key: str | None = None, max_response_bytes: int | None = 64 * 1024 * 1024,
                 first_byte_timeout: float = 60.0, stream_idle_timeout: float = 120.0) -> None:
        self.region = region
        if endpoint not in ("runtime", "mantle"):
            raise ValueError(f"bedrock endpoint: runtime or mantle, got {endpoint!r}")
        default = (f"https://bedrock-mantle.{region}.api.aws" if endpoint == "mantle"
                   else f"https://bedrock-runtime.{region}.amazonaws.com")
        self.endpoint = (endpoint_url or default).rstrip("/")
        self.endpoint_kind = endpoint
        self.model_ids = dict(model_ids)
        self.apis = dict(apis or {})      # catalog id -> "messages" | "invoke" (default)
        self.model_prefix = model_prefix
        self._api_key = api_key
        self.max_response_bytes = max_response_bytes
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=stream_idle_timeout)
        self._first_byte = first_byte_timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._credentials = credentials
        host = self.endpoint.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        self._local = host in ("127.0.0.1", "localhost", "[::1]")  # test hooks reach only a local fake

    def __repr__(self) -> str:  # never show credentials
        return (f"BedrockUpstream(region={self.region!r}, endpoint={self.endpoint!r}, "
                f"auth={'api_key' if self._api_key else 'sigv4'})")

    def api(self, model_id: str) -> str:
        return self.apis.get(model_id, "invoke")

    def supports(self, model_id: str | None) -> bool:
        return bool(model_id) and model_id in self.model_ids

    def bedrock_id(self, model_id: str) -> str:
        bid = self.model_ids.get(model_id)
        if not bid:
            raise NotFoundError(f"model {model_id} has no Amazon Bedrock id in the catalog")
        return self.model_prefix + bid

    def _creds(self) -> Any:
        if self._credentials is None:
            import botocore.session  # lazy: only when Bedrock is configured

            creds = botocore.session.Session().get_credentials()
            if creds is None:
                raise UpstreamConnectionError("bedrock: no AWS credentials found (environment, profile or role)")
            self._credentials = creds
        return self._credentials

    def _sign(self, url: str, payload: bytes, accept: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": accept, **(extra or {})}
        if self._api_key:  # a Bedrock API key: a bearer token, nothing to sign
            return dict(headers, authorization=f"Bearer {self._api_key}")
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        req = AWSRequest(method="POST", url=url, data=payload, headers=headers)
        SigV4Auth(self._creds(), "bedrock", self.region).add_auth(req)
        return dict(req.headers.items())

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300, keepalive_timeout=30)
            # auto_decompress: aiohttp asks for the encodings it decodes and decodes them (see anthropic.py)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, auto_decompress=True,
                                                  skip_auto_headers=("User-Agent",))
        return self._session

    async def send(self, path: str, body: bytes, *, headers: Mapping[str, str], stream: bool,
                   model: str | None = None) -> UpstreamResponse:
        if path.split("?", 1)[0] != "/v1/messages":  # a client's query (``?beta=true``) means nothing to Bedrock
            raise NotFoundError(f"{path} is not available through Amazon Bedrock")
        if model is not None and self.api(model) == "messages":
            return await self._send_messages(body, headers, stream, model)
        params, named = bedrock_body(body, headers)
        model_id = model or named or ""
        if self.api(model_id) == "messages":
            return await self._send_messages(body, headers, stream, model_id)
        if self.endpoint_kind == "mantle":  # mantle serves the Messages API only: say so instead of a remote 404
            raise NotFoundError(f"{model_id or 'this model'} uses Bedrock's InvokeModel API, which the bedrock-mantle "
                                f"endpoint does not serve (set [resilience.bedrock] endpoint = \"runtime\")")
        bid = self.bedrock_id(model_id)
        action = "invoke-with-response-stream" if stream else "invoke"
        url = f"{self.endpoint}/model/{quote(bid, safe='')}/{action}"
        payload = dumps_body(params)
        accept = "application/vnd.amazon.eventstream" if stream else "application/json"
        signed = self._sign(url, payload, accept)
        if self._local and "x-tierwise-bedrock-fault" in headers:
            signed["x-tierwise-bedrock-fault"] = headers["x-tierwise-bedrock-fault"]
        resp = await post(self._get_session(), url, payload, signed, "bedrock")
        resp_headers = {k.lower(): v for k, v in resp.headers.items()}
        out_headers = {"x-tierwise-upstream": self.name}
        if "x-amzn-requestid" in resp_headers:
            out_headers["request-id"] = "bedrock-" + resp_headers["x-amzn-requestid"]
        if resp.status >= 400:
            raise _bedrock_error(resp.status, await read_error_body(resp), resp_headers)
        if not stream:
            data = await read_body(resp, "bedrock", self.max_response_bytes)
            try:
                msg = orjson.loads(data)
                if isinstance(msg, dict) and msg.get("model") != model_id:
                    msg["model"] = model_id  # the path names the model; price it by the catalog id
                    data = orjson.dumps(msg)
            except orjson.JSONDecodeError:
                pass
            return UpstreamResponse(200, dict(out_headers, **{"content-type": "application/json"}), body=data,
                                    upstream=self.name)

        async def chunks() -> AsyncIterator[bytes]:
            from botocore.eventstream import EventStreamBuffer

            buf = EventStreamBuffer()
            try:
                async for raw in resp.content.iter_any():
                    buf.add_data(raw)
                    out = []
                    for frame in buf:
                        out.append(_frame_to_sse(frame, model_id))
                    if out:
                        yield b"".join(out)
            except TimeoutError:
                raise UpstreamTimeoutError("upstream bedrock timed out mid-stream") from None
            except aiohttp.ClientError as exc:
                raise UpstreamConnectionError(f"upstream bedrock dropped the stream: {type(exc).__name__}") from None

        async def close() -> None:
            resp.close() if not resp.content.at_eof() else resp.release()

        return UpstreamResponse(200, dict(out_headers, **{"content-type": "text/event-stream"}), chunks=chunks(),
                                upstream=self.name, _close=close)

    async def _send_messages(self, body: bytes, headers: Mapping[str, str], stream: bool, model_id: str) -> UpstreamResponse:
        """Bedrock's own Messages API endpoint (``/anthropic/v1/messages``): Anthropic JSON and SSE."""
        bid = self.bedrock_id(model_id)
        url = f"{self.endpoint}/anthropic/v1/messages"
        payload = messages_body(body, bid)
        extra = {"anthropic-version": headers.get("anthropic-version") or "2023-06-01"}
        if headers.get("anthropic-beta"):
            extra["anthropic-beta"] = headers["anthropic-beta"]
        signed = self._sign(url, payload, "text/event-stream" if stream else "application/json", extra)
        if self._local and "x-tierwise-bedrock-fault" in headers:
            signed["x-tierwise-bedrock-fault"] = headers["x-tierwise-bedrock-fault"]
        if stream:
            resp = await post(self._get_session(), url, payload, signed, "bedrock", timeout=self._stream_timeout,
                              first_byte=self._first_byte)
        else:
            resp = await post(self._get_session(), url, payload, signed, "bedrock")
        resp_headers = {k.lower(): v for k, v in resp.headers.items()}
        out_headers = {"x-tierwise-upstream": self.name}
        rid = resp_headers.get("x-amzn-requestid") or resp_headers.get("request-id")
        if rid:
            out_headers["request-id"] = "bedrock-" + rid
        if resp.status >= 400:
            data = await read_error_body(resp)
            if "x-amzn-errortype" not in resp_headers and _anthropic_error(data):  # the API's own words
                raise error_for_status(resp.status, data, {k: v for k, v in resp_headers.items()
                                                           if k in ("retry-after", "retry-after-ms", "x-should-retry")})
            raise _bedrock_error(resp.status, data, resp_headers)
        if not stream:
            data = await read_body(resp, "bedrock", self.max_response_bytes)
            try:
                msg = orjson.loads(data)
                if isinstance(msg, dict) and msg.get("model") != model_id:
                    msg["model"] = model_id
                    data = orjson.dumps(msg)
            except orjson.JSONDecodeError:
                pass
            return UpstreamResponse(200, dict(out_headers, **{"content-type": "application/json"}), body=data,
                                    upstream=self.name)

        async def raw() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
            except TimeoutError:
                raise UpstreamTimeoutError("upstream bedrock timed out mid-stream") from None
            except aiohttp.ClientError as exc:
                raise UpstreamConnectionError(f"upstream bedrock dropped the stream: {type(exc).__name__}") from None

        async def close() -> None:
            resp.close() if not resp.content.at_eof() else resp.release()

        return UpstreamResponse(200, dict(out_headers, **{"content-type": "text/event-stream"}),
                                chunks=rename_stream_model(raw(), model_id), upstream=self.name, _close=close)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def _anthropic_error(data: bytes) -> bool:
    try:
        err = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(err, dict) and err.get("type") == "error" and isinstance(err.get("error"), dict)


def _frame_to_sse(frame: Any, model_id: str) -> bytes:
    headers = frame.headers
    mtype = headers.get(":message-type")
    if mtype == "event" and headers.get(":event-type") == "chunk":
        data = orjson.loads(frame.payload)
        event = base64.b64decode(data["bytes"])
        obj = orjson.loads(event)
        if obj.get("type") == "message_start" and isinstance(obj.get("message"), dict):
            obj["message"]["model"] = model_id
        return format_event(str(obj.get("type", "message")), obj)
    # an exception frame mid-stream: Anthropic's in-stream error event
    kind = str(headers.get(":exception-type") or headers.get(":error-code") or "InternalServerException")
    status, etype = _AWS_ERRORS.get(kind, (500, "api_error"))
    try:
        message = orjson.loads(frame.payload).get("message") or kind
    except (orjson.JSONDecodeError, AttributeError):
        message = kind
    return format_event("error", {"type": "error", "error": {"type": etype, "message": f"bedrock: {message}"}})


def _bedrock_error(status: int, data: bytes, headers: Mapping[str, str]) -> Exception:
    kind = (headers.get("x-amzn-errortype") or "").split(":")[0]
    mapped = _AWS_ERRORS.get(kind)
    try:
        message = str(orjson.loads(data).get("message") or kind or f"HTTP {status}")
    except (orjson.JSONDecodeError, AttributeError):
        message = kind or f"HTTP {status}"
    st, etype = mapped if mapped else (status, "api_error" if status >= 500 else "invalid_request_error")
    return error_for_status(st, error_body(etype, f"bedrock: {message}"), {k: v for k, v in headers.items()
                                                                            if k in ("retry-after", "x-should-retry")})


def build_bedrock(conf: Mapping[str, Any], catalog: Any, *, timeout: float | None = None,
                  upstream: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> BedrockUpstream:
    """The Bedrock upstream of ``[resilience.bedrock]``; ``upstream`` is ``[upstream]`` (its timeouts and limits)."""
    import os

    env = os.environ if environ is None else environ
    from .kinds import model_ids

    ids = model_ids("bedrock", conf, catalog)
    apis = {m.id: api for m in catalog.listed() if m.id in ids and (api := m.upstream_attr("bedrock", "api"))}
    api_key = None
    if conf.get("auth") == "api_key":
        api_key = env.get(str(conf.get("api_key_env") or "AWS_BEARER_TOKEN_BEDROCK")) or None
        if api_key is None:
            from ..errors import ConfigError

            raise ConfigError(f"resilience.bedrock.auth = \"api_key\": set ${conf.get('api_key_env')} to a Bedrock API key")
    up = upstream or {}
    return BedrockUpstream(str(conf.get("region") or "us-east-1"), model_ids=ids, endpoint_url=str(conf.get("endpoint_url") or ""),
                           model_prefix=str(conf.get("model_prefix") or ""), timeout=float(timeout or conf.get("timeout", 600.0)),
                           apis=apis, endpoint=str(conf.get("endpoint") or "runtime"), api_key=api_key,
                           connect_timeout=float(up.get("connect_timeout", 10.0)),
                           first_byte_timeout=float(up.get("first_byte_timeout", 60.0)),
                           stream_idle_timeout=float(up.get("stream_idle_timeout", 120.0)),
                           max_response_bytes=int(up.get("max_response_bytes", 64 * 1024 * 1024)))
