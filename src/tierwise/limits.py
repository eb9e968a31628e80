"""Limits on input and request rate, each refused with a clear 4xx in Anthropic's error format.

- header block larger than ``limits.max_header_bytes`` or one header value over
  ``limits.max_header_value_bytes``: 431;
- body larger than ``server.max_body_bytes``: 413 ``request_too_large`` (checked while reading);
- more than ``limits.max_messages`` messages: 400;
- ``max_tokens`` above the target model's maximum output (a request naming a model; routed
  requests have it lowered to the chosen model's maximum, and reported in ``x-tierwise-adapted``): 400;
- per-key requests per minute (``tierwise keys create --rpm``): 429 with ``retry-after``.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable

from .errors import APIError, InvalidRequestError, RateLimitError

__all__ = ["InputLimits", "RateLimiter", "HeaderTooLargeError"]


class HeaderTooLargeError(APIError):
    status = 431
    error_type = "invalid_request_error"


class InputLimits:
    __slots__ = ("max_messages", "max_header_bytes", "max_header_value_bytes")

    def __init__(self, conf: dict[str, Any]) -> None:
        self.max_messages = int(conf.get("max_messages", 100_000))
        self.max_header_bytes = int(conf.get("max_header_bytes", 32 * 1024))
        self.max_header_value_bytes = int(conf.get("max_header_value_bytes", 8 * 1024))

    def check_headers(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        total = 0
        vmax = self.max_header_value_bytes
        for k, v in raw:
            n = len(v)
            if n > vmax:
                raise HeaderTooLargeError(f"header {k[:64].decode('latin-1')!r} is {n:,} bytes; the limit is {vmax:,} bytes")
            total += len(k) + n
        if total > self.max_header_bytes:
            raise HeaderTooLargeError(f"request headers total {total:,} bytes; the limit is {self.max_header_bytes:,} bytes")

    def check_body(self, body: dict[str, Any]) -> None:
        n = len(body["messages"])
        if n > self.max_messages:
            raise InvalidRequestError(f"messages: {n:,} messages; the limit is {self.max_messages:,}")

    @staticmethod
    def check_max_tokens(max_tokens: int, model_id: str, max_output: int) -> None:
        if max_tokens > max_output:
            raise InvalidRequestError(f"max_tokens: {max_tokens} > {max_output}, which is the maximum allowed number of "
                                      f"output tokens for {model_id}")


class RateLimiter:
    """Requests per minute per key: a token bucket in-process, or a per-minute counter in Redis (shared)."""

    def __init__(self, redis_url: str = "", clock: Any = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._redis: Any = None
        if redis_url:
            import redis.asyncio as aioredis  # lazy

            self._redis = aioredis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)

    async def check(self, key_id: str, rpm: int) -> None:
        if self._redis is not None:
            minute = int(time.time() // 60)
            rk = f"tierwise:rpm:{key_id}:{minute}"
            pipe = self._redis.pipeline()
            pipe.incr(rk)
            pipe.expire(rk, 120)
            n, _ = await pipe.execute()
            if int(n) > rpm:
                wait = 60 - time.time() % 60
                raise RateLimitError(f"rate limit: proxy key {key_id} may send {rpm} requests per minute",
                                     headers={"retry-after": str(max(1, math.ceil(wait)))})
            return
        now = self.clock()
        tokens, at = self._buckets.get(key_id, (float(rpm), now))
        tokens = min(float(rpm), tokens + (now - at) * rpm / 60.0)
        if tokens < 1.0:
            self._buckets[key_id] = (tokens, now)
            wait = (1.0 - tokens) * 60.0 / rpm
            raise RateLimitError(f"rate limit: proxy key {key_id} may send {rpm} requests per minute",
                                 headers={"retry-after": str(max(1, math.ceil(wait)))})
        self._buckets[key_id] = (tokens - 1.0, now)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
