"""Plain HTTP forwarding for the rest of the API surface (Message Batches, Files): any method, a
body given whole or as a stream (a multipart upload is never held in memory), the answer whole or
streamed (batch results JSONL, file downloads).

Used by ``AnthropicUpstream.request``; the offline upstream serves the same paths in-process
(``fake_batches``). Non-2xx answers raise the ``tierwise.errors`` class for the status, as
``send`` does.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Mapping

import aiohttp
import yarl

from ..errors import UpstreamConnectionError, UpstreamTimeoutError, error_for_status
from ._http import read_body, read_error_body
from .base import UpstreamResponse

__all__ = ["forward", "rest_headers"]

# request headers never forwarded: hop-by-hop ones, the ones the transport sets, and auth (set by the upstream)
_DROP = frozenset(("connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
                   "accept-encoding", "expect", "x-api-key", "authorization", "cookie"))
# response headers that describe the bytes on the wire (the body is handed on as read)
_WIRE = frozenset(("content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"))


def rest_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's headers (lower-case names) that go on: ``anthropic-*`` (``anthropic-beta:
    files-api-2025-04-14``, ``anthropic-workspace-id``...), ``content-type`` with its multipart
    boundary, ``accept``, ``user-agent``...; never hop-by-hop ones, auth or tierwise's own."""
    conn = headers.get("connection", "")
    drop = _DROP | {t.strip().lower() for t in conn.split(",") if t.strip()}
    return {k: v for k, v in headers.items()
            if k not in drop and not k.startswith("proxy-") and not k.startswith("x-tierwise-")}


async def forward(session: aiohttp.ClientSession, url: yarl.URL, method: str, headers: Mapping[str, str],
                  body: Any, name: str, stream: bool) -> UpstreamResponse:
    out = dict(headers)
    out["accept-encoding"] = "identity"  # the body is handed on byte for byte
    try:
        resp = await session.request(method, url, data=body, headers=out)
    except TimeoutError:
        raise UpstreamTimeoutError(f"upstream {name} timed out before answering") from None
    except aiohttp.ClientError as exc:
        raise UpstreamConnectionError(f"upstream {name} unreachable: {type(exc).__name__}") from None
    resp_headers = {k.lower(): v for k, v in resp.headers.items() if k.lower() not in _WIRE}
    if resp.status >= 400:
        raise error_for_status(resp.status, await read_error_body(resp), resp_headers)
    if not stream:
        return UpstreamResponse(resp.status, resp_headers, body=await read_body(resp, name), upstream=name)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.content.iter_any():
                yield chunk
        except TimeoutError:
            raise UpstreamTimeoutError(f"upstream {name} timed out mid-download") from None
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"upstream {name} dropped the download: {type(exc).__name__}") from None

    async def close() -> None:
        resp.close() if not resp.content.at_eof() else resp.release()

    return UpstreamResponse(resp.status, resp_headers, chunks=chunks(), upstream=name, _close=close)
