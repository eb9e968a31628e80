"""The aiohttp steps every HTTP upstream shares: post, read an error body, read a whole body, and
turn transport failures into the one exception tree (timeouts -> 504, connection errors -> 502)."""

from __future__ import annotations

import asyncio
from typing import Mapping

import aiohttp
import yarl

from ..errors import UpstreamConnectionError, UpstreamTimeoutError

__all__ = ["post", "read_error_body", "read_body"]


# A timeout after a long wait is not retried on the same target (x-should-retry: false): a hanging
# upstream then holds a non-streamed request for one ``upstream.timeout`` per target (10 minutes, the
# API's own limit for a synchronous answer), not one per attempt. Short waits are retried as the SDK does.
_NO_RETRY = {"x-should-retry": "false"}
LONG_WAIT = 60.0


async def post(session: aiohttp.ClientSession, url: "str | yarl.URL", data: bytes, headers: Mapping[str, str],
               name: str, *, timeout: "aiohttp.ClientTimeout | None" = None,  # noqa: ASYNC109 (aiohttp's own timeout object)
               first_byte: float | None = None) -> aiohttp.ClientResponse:
    """POST and wait for the answer's headers, ``first_byte`` seconds at most (None: the session's timeout)."""
    kw = {"timeout": timeout} if timeout is not None else {}
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        if first_byte is None:
            return await session.post(url, data=data, headers=headers, **kw)
        async with asyncio.timeout(first_byte):
            return await session.post(url, data=data, headers=headers, **kw)
    except TimeoutError:
        waited = loop.time() - started
        raise UpstreamTimeoutError(f"upstream {name} timed out before answering ({waited:.0f} s)",
                                   headers=_NO_RETRY if waited > LONG_WAIT else None) from None
    except aiohttp.ClientError as exc:
        raise UpstreamConnectionError(f"upstream {name} unreachable: {type(exc).__name__}") from None


async def read_error_body(resp: aiohttp.ClientResponse) -> bytes:
    """The body of an error answer, or nothing if it cannot be read; the connection is released."""
    try:
        return await resp.read()
    except (TimeoutError, aiohttp.ClientError):
        return b""
    finally:
        resp.release()


async def read_body(resp: aiohttp.ClientResponse, name: str, limit: int | None = None) -> bytes:
    """The whole body, at most ``limit`` bytes: a larger answer is refused from its content-length
    before it is read, or as soon as it passes the limit (502; the connection is dropped, not drained)."""
    if limit is None:
        try:
            return await resp.read()
        except TimeoutError:
            raise UpstreamTimeoutError(f"upstream {name} timed out while sending the body") from None
        except aiohttp.ClientError as exc:
            raise UpstreamConnectionError(f"upstream {name} dropped the connection: {type(exc).__name__}") from None
        finally:
            resp.release()
    too_big = UpstreamConnectionError(f"upstream {name} answered with more than {limit:,} bytes "
                                      "(upstream.max_response_bytes)", headers=_NO_RETRY)
    length = resp.content_length
    if length is not None and length > limit:
        resp.close()
        raise too_big
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            chunk = await resp.content.readany()
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                resp.close()
                raise too_big
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)
    except TimeoutError:
        raise UpstreamTimeoutError(f"upstream {name} timed out while sending the body") from None
    except aiohttp.ClientError as exc:
        raise UpstreamConnectionError(f"upstream {name} dropped the connection: {type(exc).__name__}") from None
    finally:
        resp.release()
