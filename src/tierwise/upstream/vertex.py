"""Google Cloud Vertex AI as an upstream: Claude through ``rawPredict`` / ``streamRawPredict``.

``POST https://{region}-aiplatform.googleapis.com/v1/projects/{project}/locations/{region}/publishers/
anthropic/models/{model}:rawPredict`` (``:streamRawPredict`` for a stream; the ``global`` region is
``https://aiplatform.googleapis.com/...``), the way Anthropic's own ``AnthropicVertex`` client sends
it: the Messages body without ``model`` (it is in the path), with ``anthropic_version:
"vertex-2023-10-16"``; ``stream`` stays in the body; ``anthropic-beta`` stays a header. Token
counting is ``.../models/count-tokens:rawPredict`` with ``model`` kept in the body. Answers are
Anthropic JSON and SSE; ``message_start`` is made to name the catalog id (for pricing).

Auth is an OAuth access token as ``Authorization: Bearer``: from ``$<token_env>`` when configured
(read on every call, so a sidecar can rotate it), else from google-auth's application default
credentials (``pip install google-auth``; optional, imported only when Vertex is used this way).
Vertex model ids default to the catalog id (``claude-sonnet-5-5``); ``[resilience.vertex.model_ids]``
maps others (``"claude-sonnet-4-5" = "claude-sonnet-4-5@20250929"``).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, AsyncIterator, Mapping
from urllib.parse import quote

import aiohttp
import orjson

from ..errors import InvalidRequestError, NotFoundError, UpstreamConnectionError, UpstreamTimeoutError, error_for_status
from ..jsonbody import dumps as dumps_body
from ._http import post, read_body, read_error_body
from .base import UpstreamResponse
from .bedrock import rename_stream_model

__all__ = ["VertexUpstream", "vertex_body", "VERTEX_VERSION", "build_vertex"]

VERTEX_VERSION = "vertex-2023-10-16"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def vertex_body(body: bytes, *, keep_model: bool = False) -> tuple[bytes, str | None]:
    """The Vertex body for a Messages API body, and the model it named."""
    params = orjson.loads(body)
    if not isinstance(params, dict):
        raise InvalidRequestError("request body must be a JSON object")
    model = params.get("model") if keep_model else params.pop("model", None)
    params.setdefault("anthropic_version", VERTEX_VERSION)
    return dumps_body(params), model


class _GoogleToken:
    """Application default credentials through google-auth, refreshed in a thread before expiry."""

    def __init__(self) -> None:
        self._creds: Any = None
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:
            creds = self._creds
            if creds is None or not creds.valid or (creds.expiry is not None and
                                                    creds.expiry.timestamp() - time.time() < 300):
                self._creds = creds = await asyncio.to_thread(self._refresh, creds)
            return str(creds.token)

    @staticmethod
    def _refresh(creds: Any) -> Any:
        try:
            import google.auth  # lazy and optional
            import google.auth.transport.requests
        except ImportError:
            raise UpstreamConnectionError("vertex: no token: set resilience.vertex.token_env, or install google-auth "
                                          "for application default credentials") from None
        if creds is None:
            creds, _ = google.auth.default(scopes=list(SCOPES))
        creds.refresh(google.auth.transport.requests.Request())
        return creds


class VertexUpstream:
    name = "vertex"

    def __init__(self, project: str, region: str = "global", *, model_ids: Mapping[str, str] | None = None,
                 models: "set[str] | frozenset[str] | None" = None, endpoint_url: str = "", token_env: str = "",
                 token: Any = None, timeout: float = 600.0, connect_timeout: float = 10.0, max_connections: int = 256,
                 first_byte_timeout: float = 60.0, stream_idle_timeout: float = 120.0,
                 max_response_bytes: int | None = 64 * 1024 * 1024, environ: Mapping[str, str] | None = None) -> None:
        if not project:
            raise ValueError("vertex: a Google Cloud project is required (resilience.vertex.project)")
        self.project = project
        self.region = region
        host = "https://aiplatform.googleapis.com" if region == "global" else f"https://{region}-aiplatform.googleapis.com"
        self.endpoint = (endpoint_url or host).rstrip("/")
        h = self.endpoint.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        self._local = h in ("127.0.0.1", "localhost", "[::1]")  # test hooks reach only a local fake
        self.model_ids = dict(model_ids or {})
        self.models = frozenset(models) if models is not None else None  # None: every model id
        self._token_env = token_env
        self._env = os.environ if environ is None else environ
        self._token = token if token is not None else (None if token_env else _GoogleToken())
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=stream_idle_timeout)
        self._first_byte = first_byte_timeout
        self.max_response_bytes = max_response_bytes
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never show the token
        return f"VertexUpstream(project={self.project!r}, region={self.region!r}, endpoint={self.endpoint!r})"

    def supports(self, model_id: str | None) -> bool:
        return bool(model_id) and (self.models is None or model_id in self.models)

    def vertex_id(self, model_id: str) -> str:
        return self.model_ids.get(model_id, model_id)

    def url(self, model: str, specifier: str) -> str:
        return (f"{self.endpoint}/v1/projects/{quote(self.project, safe='')}/locations/{quote(self.region, safe='')}"
                f"/publishers/anthropic/models/{quote(model, safe='@')}:{specifier}")

    async def _bearer(self) -> str:
        if self._token_env:
            tok = self._env.get(self._token_env)
            if not tok:
                raise UpstreamConnectionError(f"vertex: ${self._token_env} (resilience.vertex.token_env) is not set")
            return tok
        if isinstance(self._token, str):
            return self._token
        return await self._token.get()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, auto_decompress=False,
                                                  skip_auto_headers=("User-Agent",), cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def send(self, path: str, body: bytes, *, headers: Mapping[str, str], stream: bool,
                   model: str | None = None) -> UpstreamResponse:
        if path == "/v1/messages/count_tokens":
            payload, named = vertex_body(body, keep_model=True)
            model_id = model or named or ""
            if model_id and self.vertex_id(model_id) != model_id:
                params = orjson.loads(payload)
                params["model"] = self.vertex_id(model_id)
                payload = dumps_body(params)
            url, stream = self.url("count-tokens", "rawPredict"), False
        elif path == "/v1/messages":
            payload, named = vertex_body(body)
            model_id = model or named or ""
            if not self.supports(model_id):
                raise NotFoundError(f"model {model_id} is not configured for Vertex AI")
            url = self.url(self.vertex_id(model_id), "streamRawPredict" if stream else "rawPredict")
        else:
            raise NotFoundError(f"{path} is not available through Vertex AI")
        out = {"content-type": "application/json", "user-agent": "tierwise/0.1",
               "authorization": f"Bearer {await self._bearer()}"}
        if headers.get("anthropic-beta"):
            out["anthropic-beta"] = headers["anthropic-beta"]
        if self._local and "x-tierwise-vertex-fault" in headers:
            out["x-tierwise-vertex-fault"] = headers["x-tierwise-vertex-fault"]
        if stream:
            resp = await post(self._get_session(), url, payload, out, self.name, timeout=self._stream_timeout,
                              first_byte=self._first_byte)
        else:
            resp = await post(self._get_session(), url, payload, out, self.name)
        resp_headers = {k.lower(): v for k, v in resp.headers.items()}
        fwd = {"x-tierwise-upstream": self.name}
        if resp.status >= 400:
            raise error_for_status(resp.status, _anthropic_shaped(resp.status, await read_error_body(resp)),
                                   {k: v for k, v in resp_headers.items() if k in ("retry-after", "x-should-retry")})
        if not stream:
            data = await read_body(resp, self.name, self.max_response_bytes)
            if path == "/v1/messages":
                try:
                    msg = orjson.loads(data)
                    if isinstance(msg, dict) and msg.get("model") != model_id:
                        msg["model"] = model_id  # priced by the catalog id
                        data = orjson.dumps(msg)
                except orjson.JSONDecodeError:
                    pass
            return UpstreamResponse(200, dict(fwd, **{"content-type": "application/json"}), body=data, upstream=self.name)

        async def raw() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
            except TimeoutError:
                raise UpstreamTimeoutError("upstream vertex timed out mid-stream") from None
            except aiohttp.ClientError as exc:
                raise UpstreamConnectionError(f"upstream vertex dropped the stream: {type(exc).__name__}") from None

        async def close() -> None:
            resp.close() if not resp.content.at_eof() else resp.release()

        return UpstreamResponse(200, dict(fwd, **{"content-type": "text/event-stream"}),
                                chunks=rename_stream_model(raw(), model_id), upstream=self.name, _close=close)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def _anthropic_shaped(status: int, data: bytes) -> bytes:
    """Vertex answers Anthropic errors as they are, and its own (auth, quota) as Google JSON errors."""
    from ..errors import error_body

    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return error_body("api_error" if status >= 500 else "invalid_request_error", f"vertex: HTTP {status}")
    if isinstance(obj, dict) and obj.get("type") == "error":
        return data
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        err = obj[0].get("error")
    message = (err or {}).get("message") if isinstance(err, dict) else None
    kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
            529: "overloaded_error"}.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return error_body(kind, f"vertex: {message or f'HTTP {status}'}")


def build_vertex(conf: Mapping[str, Any], catalog: Any, *, upstream: Mapping[str, Any] | None = None) -> VertexUpstream:
    """The Vertex upstream of ``[resilience.vertex]``; ``upstream`` is ``[upstream]`` (timeouts, limits)."""
    up = upstream or {}
    models = {m.id for m in catalog.listed() if not m.retired}
    return VertexUpstream(str(conf.get("project") or ""), str(conf.get("region") or "global"),
                          model_ids=dict(conf.get("model_ids") or {}), models=models,
                          endpoint_url=str(conf.get("endpoint_url") or ""), token_env=str(conf.get("token_env") or ""),
                          timeout=float(conf.get("timeout", 600.0)), connect_timeout=float(up.get("connect_timeout", 10.0)),
                          first_byte_timeout=float(up.get("first_byte_timeout", 60.0)),
                          stream_idle_timeout=float(up.get("stream_idle_timeout", 120.0)),
                          max_response_bytes=int(up.get("max_response_bytes", 64 * 1024 * 1024)))
