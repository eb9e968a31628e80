"""The Anthropic API upstream: one pooled client for the process.

Messages (``send``, the hot path) go through ``pyreqwest`` (``_reqwest.py``), the REST paths (Message
Batches, Files: ``request``) through one ``aiohttp`` session. Both were chosen by measurement: aiohttp
served several times the requests per second of ``httpx``; pyreqwest spends about half of aiohttp's
instructions per call (bench/hotpath_instructions.py, README "Speed"). The base URL is configurable,
so the same client talks to api.anthropic.com, a corporate gateway or a local test server.

The wire, both ways (README, "Wire"):

- the client's request headers go on unchanged but for the hop-by-hop ones and the auth tierwise
  replaces (``base.forward_request_headers``); the query string goes on with the path;
- tierwise asks for the encodings it can decode (``Accept-Encoding: gzip, deflate, br, zstd``, as it
  always did) and the client decodes the answer as it arrives, streams included. Every reader after this
  module (usage, cost, error bodies, the SSE meter) and the client see decoded bytes, without a
  ``content-encoding`` header: over the internet the compressed upstream leg is the one that matters,
  and decoding costs the proxy less than the bytes it saves (bench/proxy_overhead.py measures it);
- every request carries ``x-tierwise-hop`` (loop detection, see ``server/app.py``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Mapping

import aiohttp
import yarl

from ..errors import error_for_status
from ._reqwest import ACCEPT_ENCODING, Exchange
from .base import HOP_HEADER, UpstreamResponse, forward_request_headers, hop_value

__all__ = ["AnthropicUpstream"]

# response headers that describe the bytes on the wire, not the decoded body tierwise hands on
_WIRE_ONLY = ("content-encoding", "content-length", "transfer-encoding")


class AnthropicUpstream:
    name = "anthropic"

    def __init__(self, base_url: str = "https://api.anthropic.com", api_key: str | None = None, *,
                 timeout: float = 600.0, connect_timeout: float = 10.0, max_connections: int = 512,
                 name: str = "anthropic", first_byte_timeout: float = 60.0, stream_idle_timeout: float = 120.0,
                 max_response_bytes: int | None = 64 * 1024 * 1024) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.name = name
        # a non-streamed answer: ``timeout`` for all of it; a stream: ``first_byte_timeout`` for its
        # headers, then ``stream_idle_timeout`` of silence at most between chunks (docs/production.md)
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._first_byte = first_byte_timeout
        self.max_response_bytes = max_response_bytes
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}
        # the Messages path (send) goes through pyreqwest, two pools: whole answers (no read timeout: a
        # long answer may think for minutes before its first byte) and streams (stream_idle_timeout)
        self._total = timedelta(seconds=timeout)
        self._connect_timeout = connect_timeout
        self._stream_idle = stream_idle_timeout
        self._clients: list[Any] = [None, None]
        # test hooks (fault injection, SSE replay) reach only a server on this machine
        host = self.base_url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        self._local = host in ("127.0.0.1", "localhost", "[::1]")

    def __repr__(self) -> str:  # never show the key
        return f"AnthropicUpstream(base_url={self.base_url!r}, api_key={'set' if self._api_key else 'client'})"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=self._max_connections,
                                             ttl_dns_cache=300, keepalive_timeout=30)
            # no cookie jar: one pooled session serves every caller, so a cookie set in one caller's
            # answer (e.g. by a CDN in front of the API) must never ride along on another's request
            # auto_decompress: the body is decoded as it arrives (gzip/deflate, br, zstd), the one place
            # tierwise reads compressed bytes; Accept-Encoding is aiohttp's default, exactly what it decodes
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                                  auto_decompress=True, skip_auto_headers=("User-Agent",),
                                                  cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def _client(self, stream: bool) -> Any:
        client = self._clients[stream]
        if client is None:
            from ._reqwest import build_client

            client = self._clients[stream] = build_client(
                max_connections=self._max_connections, connect_timeout=self._connect_timeout,
                idle_timeout=self._stream_idle if stream else None)
        return client

    def _url(self, path: str) -> yarl.URL:
        url = self._urls.get(path)
        if url is None:  # parsed once per path (and query, e.g. ``?beta=true``), not per call
            # the path and query come as the client sent them: already percent-encoded, kept byte for byte
            url = yarl.URL(self.base_url + path, encoded="?" in path)
            if len(self._urls) < 256:  # query strings come from callers: keep the cache bounded
                self._urls[path] = url
        return url

    def _auth(self, headers: Mapping[str, str]) -> dict[str, str]:
        if self._api_key:
            return {"x-api-key": self._api_key}
        # no server-side key: pass the caller's own credentials through
        if headers.get("x-api-key"):
            return {"x-api-key": headers["x-api-key"]}
        if headers.get("authorization"):
            return {"authorization": headers["authorization"]}
        return {}

    async def send(self, path: str, body: bytes, *, headers: Mapping[str, str], stream: bool,
                   model: str | None = None) -> UpstreamResponse:
        out = forward_request_headers(headers)
        out["content-type"] = "application/json"
        out.setdefault("user-agent", "tierwise/0.1")
        out.setdefault("anthropic-version", "2023-06-01")
        out[HOP_HEADER] = hop_value(headers.get(HOP_HEADER))
        if self._local:
            if "x-tierwise-fault" in headers:
                out["x-tierwise-fault"] = headers["x-tierwise-fault"]
        else:
            out.pop("x-fake-replay", None)
        out.update(self._auth(headers))
        out["accept-encoding"] = ACCEPT_ENCODING
        x = Exchange(self._client(stream), self.base_url + path, body, out, self.name, None if stream else self._total)
        resp = await x.open(self._first_byte if stream else None)
        resp_headers = {k: v for k, v in resp.headers.items() if k not in _WIRE_ONLY}  # names come lower-case
        if resp.status >= 400:
            raise error_for_status(resp.status, await x.read_error(), resp_headers)
        if not stream:
            return UpstreamResponse(resp.status, resp_headers, body=await x.read(self.max_response_bytes),
                                    upstream=self.name)
        return UpstreamResponse(resp.status, resp_headers, chunks=x.chunks(), upstream=self.name, _close=x.close)

    async def request(self, method: str, path: str, *, headers: Mapping[str, str], body: Any = None,
                      stream: bool = False) -> UpstreamResponse:
        """Any other API call (Message Batches, Files): ``body`` bytes or a stream of them, the answer
        whole or streamed (``stream``); see ``upstream/rest.py``."""
        from .rest import forward, rest_headers

        out = rest_headers(headers)
        out.setdefault("anthropic-version", "2023-06-01")
        out[HOP_HEADER] = hop_value(headers.get(HOP_HEADER))  # loop detection on every path (server/app.py)
        if body is not None and not isinstance(body, bytes) and headers.get("content-length", "").isdigit():
            out["content-length"] = headers["content-length"]  # a streamed upload keeps its declared length
        out.update(self._auth(headers))
        return await forward(self._get_session(), self._url(path), method, out, body, self.name, stream)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        for i, client in enumerate(self._clients):
            if client is not None:
                self._clients[i] = None
                await client.close()
