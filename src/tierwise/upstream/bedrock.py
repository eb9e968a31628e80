"""Amazon Bedrock as an upstream: the same Claude model through ``/model/{id}/invoke``.

Requests are signed with botocore's SigV4 signer (``pip install 'tierwise[bedrock]'``; imported
lazily, only when Bedrock is configured) and sent through one pooled ``aiohttp`` session.
The Messages body is adapted the way Anthropic's own ``AnthropicBedrock`` client does it:
``model`` moves into the path (the catalog's ``bedrock_id``, with an optional cross-region
prefix such as ``us.``), ``stream`` picks ``/invoke-with-response-stream``, ``anthropic_version``
becomes ``bedrock-2023-05-31`` and ``anthropic-beta`` headers become ``anthropic_beta``.

Streams come back as AWS event-stream frames whose ``chunk`` events carry base64 JSON of the
Anthropic events; they are re-framed as Anthropic SSE, so the proxy and its clients see the
same ``message_start`` ... ``message_stop`` sequence as from the first-party API.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, AsyncIterator, Mapping
from urllib.parse import quote

import aiohttp
import orjson

from ..errors import (InvalidRequestError, NotFoundError, UpstreamConnectionError, UpstreamTimeoutError, error_body,
                      error_for_status)
from ..jsonbody import dumps as dumps_body
from ._http import post, read_body, read_error_body
from .base import UpstreamResponse
from .sse import format_event

__all__ = ["BedrockUpstream", "bedrock_body", "BEDROCK_VERSION"]

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


class BedrockUpstream:
    name = "bedrock"

    def __init__(self, region: str = "us-east-1", *, model_ids: Mapping[str, str], endpoint_url: str = "",
                 model_prefix: str = "", timeout: float = 600.0, connect_timeout: float = 10.0,
                 max_connections: int = 256, credentials: Any = None) -> None:
        self.region = region
        self.endpoint = (endpoint_url or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")
        self.model_ids = dict(model_ids)
        self.model_prefix = model_prefix
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._credentials = credentials
        host = self.endpoint.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        self._local = host in ("127.0.0.1", "localhost", "[::1]")  # test hooks reach only a local fake

    def __repr__(self) -> str:  # never show credentials
        return f"BedrockUpstream(region={self.region!r}, endpoint={self.endpoint!r})"

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

    def _sign(self, url: str, payload: bytes, accept: str) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        req = AWSRequest(method="POST", url=url, data=payload, headers={"content-type": "application/json", "accept": accept})
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
        params, named = bedrock_body(body, headers)
        model_id = model or named or ""
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
            data = await read_body(resp, "bedrock")
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
            except asyncio.TimeoutError:
                raise UpstreamTimeoutError("upstream bedrock timed out mid-stream") from None
            except aiohttp.ClientError as exc:
                raise UpstreamConnectionError(f"upstream bedrock dropped the stream: {type(exc).__name__}") from None

        async def close() -> None:
            resp.close() if not resp.content.at_eof() else resp.release()

        return UpstreamResponse(200, dict(out_headers, **{"content-type": "text/event-stream"}), chunks=chunks(),
                                upstream=self.name, _close=close)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


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


def build_bedrock(conf: Mapping[str, Any], catalog: Any, *, timeout: float | None = None) -> BedrockUpstream:
    ids = {m.id: m.bedrock_id for m in catalog.listed() if m.bedrock_id}
    return BedrockUpstream(str(conf.get("region") or "us-east-1"), model_ids=ids, endpoint_url=str(conf.get("endpoint_url") or ""),
                           model_prefix=str(conf.get("model_prefix") or ""), timeout=float(timeout or conf.get("timeout", 600.0)))
