"""The one seam every network call goes through: an ``Upstream`` object.

The proxy, the in-process client helpers, the LLM router and cascades all call an
``Upstream``; tests swap it for the offline upstream or a local fake server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Protocol

import orjson

__all__ = ["Upstream", "UpstreamResponse", "call_json", "FORWARD_REQUEST_HEADERS", "FORWARD_RESPONSE_HEADERS"]

# request headers passed on to the upstream (auth is set by the upstream itself)
FORWARD_REQUEST_HEADERS = ("anthropic-version", "anthropic-beta")
# response headers passed back to the client
FORWARD_RESPONSE_HEADERS = ("request-id", "retry-after", "retry-after-ms", "x-should-retry", "anthropic-organization-id")
RATELIMIT_PREFIX = "anthropic-ratelimit-"


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
        return resp.json()
    finally:
        await resp.aclose()
