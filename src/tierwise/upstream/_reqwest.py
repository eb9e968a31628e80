"""The Messages hot path's HTTP client: ``pyreqwest`` (Rust ``reqwest`` + ``hyper`` + ``rustls``), the
same steps as ``_http`` (post, read an error body, read a whole body, one exception tree), chosen by
measurement (bench/proxy_overhead.py, bench/hotpath_instructions.py; README, "Speed").

TLS, HTTP/1.1 keep-alive pooling, chunked bodies and decoding (gzip, deflate, br, zstd: the
``Accept-Encoding`` sent is exactly what is decoded) are reqwest's; the answer reaches tierwise
decoded, without ``content-encoding``. Timeouts: a whole answer has ``timeout`` for all of it; a
stream ``first_byte`` for its headers, then ``idle`` of silence at most between chunks.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, AsyncIterator, Mapping

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError, RequestTimeoutError

from ..errors import UpstreamConnectionError, UpstreamTimeoutError
from . import _http

__all__ = ["ACCEPT_ENCODING", "build_client", "Exchange"]

# what reqwest decodes, in the order tierwise always asked for (gzip first, as aiohttp did)
ACCEPT_ENCODING = "gzip, deflate, br, zstd"


def build_client(*, max_connections: int, connect_timeout: float, idle_timeout: float | None) -> Client:
    """One pooled client for the process (built inside the running event loop). As the aiohttp session
    it replaces: HTTP/1.1, no cookie jar (one pool serves every caller), no proxy from the environment
    (``HTTPS_PROXY`` is not read: the upstream URL is the one configured), redirects followed."""
    b = (ClientBuilder().max_connections(max_connections).connect_timeout(timedelta(seconds=connect_timeout))
         .pool_idle_timeout(timedelta(seconds=30)).gzip(True).deflate(True).brotli(True).zstd(True)
         .default_cookie_store(False).tcp_nodelay(True).http1_only().no_proxy())
    if idle_timeout is not None:
        b = b.read_timeout(timedelta(seconds=idle_timeout))
    return b.build()


class Exchange:
    """One request and its answer: ``open`` sends it and waits for the headers, then ``read`` (a whole
    body), ``chunks`` (a stream) or ``close``."""

    __slots__ = ("_cm", "resp", "name")

    def __init__(self, client: Client, url: str, body: bytes, headers: Mapping[str, str], name: str,
                 timeout: timedelta | None) -> None:
        req = client.post(url).headers(headers).body_bytes(body)
        if timeout is not None:
            req = req.timeout(timeout)
        else:  # a stream: its headers as soon as they arrive, not once 64 KiB of events are buffered behind them
            req = req.streamed_read_buffer_limit(1)
        self._cm = req.build_streamed()
        self.resp: Any = None
        self.name = name

    async def open(self, first_byte: float | None = None) -> Any:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            if first_byte is None:
                self.resp = await self._cm.__aenter__()
            else:
                async with asyncio.timeout(first_byte):
                    self.resp = await self._cm.__aenter__()
        except (TimeoutError, RequestTimeoutError):
            waited = loop.time() - started
            raise UpstreamTimeoutError(f"upstream {self.name} timed out before answering ({waited:.0f} s)",
                                       headers=_http._NO_RETRY if waited > _http.LONG_WAIT else None) from None
        except PyreqwestError as exc:
            raise UpstreamConnectionError(f"upstream {self.name} unreachable: {type(exc).__name__}") from None
        return self.resp

    async def close(self) -> None:
        cm, self._cm = self._cm, None
        if cm is not None and self.resp is not None:
            try:
                await cm.__aexit__(None, None, None)
            except PyreqwestError:
                pass

    async def read_error(self) -> bytes:
        """The body of an error answer, or nothing if it cannot be read; the connection is released."""
        try:
            return bytes(await self.resp.body_reader.bytes())
        except (TimeoutError, PyreqwestError):
            return b""
        finally:
            await self.close()

    async def read(self, limit: int | None) -> bytes:
        """The whole body, at most ``limit`` bytes: a larger answer is refused from its content-length
        before it is read, or as soon as it passes the limit (502; the connection is dropped, not drained)."""
        try:
            if limit is None:
                return bytes(await self.resp.body_reader.bytes())
            length = self.resp.get_header("content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise self._too_big(limit)
            # one read of up to limit + 1 bytes: it returns at the end of the body (or with limit + 1 bytes: too big)
            data = await self.resp.body_reader.read(limit + 1)
            if data is None:
                return b""
            if len(data) > limit:
                raise self._too_big(limit)
            return bytes(data)
        except RequestTimeoutError:
            raise UpstreamTimeoutError(f"upstream {self.name} timed out while sending the body") from None
        except PyreqwestError as exc:
            raise UpstreamConnectionError(f"upstream {self.name} dropped the connection: {type(exc).__name__}") from None
        finally:
            await self.close()

    def _too_big(self, limit: int) -> UpstreamConnectionError:
        return UpstreamConnectionError(f"upstream {self.name} answered with more than {limit:,} bytes "
                                       "(upstream.max_response_bytes)", headers=_http._NO_RETRY)

    async def chunks(self) -> AsyncIterator[bytes]:
        reader = self.resp.body_reader
        try:
            while (chunk := await reader.read_chunk()) is not None:
                yield bytes(chunk)
        except RequestTimeoutError:
            raise UpstreamTimeoutError(f"upstream {self.name} timed out mid-stream") from None
        except PyreqwestError as exc:
            raise UpstreamConnectionError(f"upstream {self.name} dropped the stream: {type(exc).__name__}") from None
