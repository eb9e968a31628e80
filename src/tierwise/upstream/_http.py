"""The aiohttp steps every HTTP upstream shares: post, read an error body, read a whole body, and
turn transport failures into the one exception tree (timeouts -> 504, connection errors -> 502)."""

from __future__ import annotations

import asyncio
from typing import Mapping

import aiohttp
import yarl

from ..errors import UpstreamConnectionError, UpstreamTimeoutError

__all__ = ["post", "read_error_body", "read_body"]


async def post(session: aiohttp.ClientSession, url: "str | yarl.URL", data: bytes, headers: Mapping[str, str],
               name: str) -> aiohttp.ClientResponse:
    try:
        return await session.post(url, data=data, headers=headers)
    except asyncio.TimeoutError:
        raise UpstreamTimeoutError(f"upstream {name} timed out before answering") from None
    except aiohttp.ClientError as exc:
        raise UpstreamConnectionError(f"upstream {name} unreachable: {type(exc).__name__}") from None


async def read_error_body(resp: aiohttp.ClientResponse) -> bytes:
    """The body of an error answer, or nothing if it cannot be read; the connection is released."""
    try:
        return await resp.read()
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return b""
    finally:
        resp.release()


async def read_body(resp: aiohttp.ClientResponse, name: str) -> bytes:
    try:
        return await resp.read()
    except asyncio.TimeoutError:
        raise UpstreamTimeoutError(f"upstream {name} timed out while sending the body") from None
    except aiohttp.ClientError as exc:
        raise UpstreamConnectionError(f"upstream {name} dropped the connection: {type(exc).__name__}") from None
    finally:
        resp.release()
