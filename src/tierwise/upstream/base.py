"""The one seam every network call goes through: an ``Upstream`` object.

The proxy, the in-process client helpers, the LLM router and cascades all call an
``Upstream``; tests swap it for the offline upstream or a local fake server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Protocol

import orjson

__all__ = ["Upstream", "UpstreamResponse", "call_json", "FORWARD_REQUEST_HEADERS", "FORWARD_RESPONSE_HEADERS",
           "forward_request_headers", "HOP_HEADER", "HOP_ID", "MAX_HOPS", "hop_value"]

# request headers tierwise itself must pass on to an upstream that is not a plain HTTP forward (Bedrock)
FORWARD_REQUEST_HEADERS = ("anthropic-version", "anthropic-beta")
# response headers passed back to the client, on success and on error (plus anthropic-ratelimit-*)
FORWARD_RESPONSE_HEADERS = ("request-id", "retry-after", "retry-after-ms", "x-should-retry", "anthropic-organization-id")
RATELIMIT_PREFIX = "anthropic-ratelimit-"

# Client request headers never forwarded: hop-by-hop ones (RFC 9110 7.6.1) and the ones tierwise
# sets itself (host, length, content-type of the body it sends, the encodings it can decode, auth).
# Everything else (anthropic-*, user-agent, x-app, x-claude-code-session-id, x-stainless-*, ...)
# reaches the upstream as the client sent it.
_NOT_FORWARDED = frozenset((
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
    "content-type", "accept-encoding", "expect", "x-api-key", "authorization",
))

_PLAIN_CONNECTION = frozenset(("keep-alive", "close", "Keep-Alive", "Close"))  # name no other header

# Loop detection: every request tierwise sends upstream carries ``x-tierwise-hop``, the ids of the
# tierwise processes it went through; a proxy that finds its own id there (or too many ids) answers 508.
HOP_HEADER = "x-tierwise-hop"
HOP_ID = "tw" + os.urandom(5).hex()  # one per process
MAX_HOPS = 8


def hop_value(incoming: str | None) -> str:
    """The ``x-tierwise-hop`` to send upstream: the ids already there, then this process's."""
    return f"{incoming}, {HOP_ID}" if incoming else HOP_ID


def forward_request_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's request headers (lower-case names) that go on to the upstream unchanged."""
    drop = _NOT_FORWARDED
    conn = headers.get("connection")
    if conn and conn not in _PLAIN_CONNECTION:  # headers named by Connection are hop-by-hop too
        drop = drop | {t.strip().lower() for t in conn.split(",")}
    return {k: v for k, v in headers.items()
            if k not in drop and not k.startswith("proxy-") and not k.startswith("x-tierwise-")}


@dataclass(slots=True)
class UpstreamResponse:
    """A successful (2xx) upstream response: a whole body, or a stream of raw SSE bytes."""

    status: int
    headers: dict[str, str]
    body: bytes | None = None
    chunks: AsyncIterator[bytes] | None = None
    upstream: str = ""
    _close: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)

    async def aclose(self) -> None:
        if self._close is not None:
            close, self._close = self._close, None
            await close()

    def json(self) -> Any:
        return orjson.loads(self.body or b"null")


class Upstream(Protocol):
    """Sends Messages API requests. Non-2xx answers raise the ``tierwise.errors`` class for the status."""

    name: str

    async def send(self, path: str, body: bytes, *, headers: Mapping[str, str], stream: bool,
                   model: str | None = None) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


async def call_json(upstream: Upstream, params: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Non-streaming ``POST /v1/messages`` through ``upstream``; the parsed Message JSON."""
    hdrs = {"anthropic-version": "2023-06-01", **(headers or {})}
    resp = await upstream.send("/v1/messages", orjson.dumps(dict(params, stream=False)), headers=hdrs, stream=False,
                               model=params.get("model"))
    try:
        out: dict[str, Any] = resp.json()
        return out
    finally:
        await resp.aclose()
