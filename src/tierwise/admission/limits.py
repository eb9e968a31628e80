"""Limits on input and request rate, each refused with a clear 4xx in Anthropic's error format.

- header block larger than ``limits.max_header_bytes`` or one header value over
  ``limits.max_header_value_bytes``: 431;
- body larger than ``server.max_body_bytes``: 413 ``request_too_large`` (checked while reading);
- more than ``limits.max_messages`` messages: 400;
- ``max_tokens`` above the target model's maximum output (a request naming a model; routed
  requests have it lowered to the chosen model's maximum, and reported in ``x-tierwise-adapted``): 400;
- per-key requests per minute (``tierwise keys create --rpm``): 429 with ``retry-after``.

And one bound that refuses nothing: routing strategies read a *view* of the prompt of at most
``ROUTE_VIEW_CHARS`` characters (:func:`routing_view`, applied in ``Dispatcher``), so the time to
decide does not grow with the prompt; the request itself is forwarded whole.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable

from ..errors import APIError, InvalidRequestError, RateLimitError

__all__ = ["InputLimits", "RateLimiter", "HeaderTooLargeError", "routing_view", "ROUTE_VIEW_CHARS"]

# What a strategy reads at most: above the heuristic's "very long prompt" mark (50,000 tokens, about
# 200,000 characters), so that signal survives the cut; the context-window check uses the real size.
ROUTE_VIEW_CHARS = 256 * 1024


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


def _text_of(block: Any) -> str | None:
    if isinstance(block, dict) and block.get("type") == "text":
        t = block.get("text")
        return t if isinstance(t, str) else None
    return None


def _cut(text: str, n: int) -> str:
    """At most ``n`` characters of ``text``: its head and its tail (the question is often at the end)."""
    if len(text) <= n:
        return text
    if n <= 0:
        return ""
    tail = n // 4
    return text[: n - tail] + text[len(text) - tail:] if tail else text[:n]


def routing_view(body: dict[str, Any], max_chars: int = ROUTE_VIEW_CHARS) -> tuple[dict[str, Any], int]:
    """``(view, chars)``: the body a routing strategy reads, and the characters of text in the real one.

    The view is ``body`` itself when its text fits in ``max_chars`` (nearly every request: nothing is
    copied). Otherwise a shallow copy where texts are cut (head and tail kept): the last user turn
    keeps up to half of ``max_chars``, the system prompt up to a quarter, earlier turns what is left,
    newest first. Every message and block stays (turn, tool and document counts are unchanged)."""
    system = body.get("system")
    messages = body.get("messages") or ()
    total = 0
    n_parts = 0
    if isinstance(system, str):
        total += len(system)
        n_parts += 1
    elif isinstance(system, list):
        for b in system:
            if isinstance(b, dict):
                t = b.get("text", "")
                total += len(t) if isinstance(t, str) else 0
                n_parts += 1
    last_user = -1
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            continue
        n_parts += 1
        content = msg.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            for b in content:
                t = _text_of(b)
                if t is not None:
                    total += len(t) + 1
        if msg.get("role") == "user":
            last_user = i
    total += max(n_parts - 1, 0)
    if total <= max_chars:
        return body, total

    def cut_content(content: Any, budget: int) -> tuple[Any, int]:
        if isinstance(content, str):
            out = _cut(content, budget)
            return out, len(out)
        if not isinstance(content, list):
            return content, 0
        blocks, used = [], 0
        for b in content:
            t = _text_of(b)
            if t is None:
                blocks.append(b)
                continue
            out = _cut(t, budget - used)
            used += len(out)
            blocks.append(dict(b, text=out) if out is not t else b)
        return blocks, used

    view = dict(body)
    msgs = list(messages)
    left = max_chars
    if last_user >= 0:
        msgs[last_user] = dict(msgs[last_user])
        msgs[last_user]["content"], used = cut_content(msgs[last_user].get("content"), max_chars // 2)
        left -= used
    if isinstance(system, str):
        view["system"] = _cut(system, min(left, max_chars // 4))
        left -= len(view["system"])
    elif isinstance(system, list):
        budget, blocks = min(left, max_chars // 4), []
        for b in system:
            t = b.get("text") if isinstance(b, dict) else None
            if isinstance(t, str):
                out = _cut(t, budget)
                budget -= len(out)
                left -= len(out)
                b = dict(b, text=out) if out is not t else b
            blocks.append(b)
        view["system"] = blocks
    for i in range(len(msgs) - 1, -1, -1):
        if i == last_user or not isinstance(msgs[i], dict):
            continue
        msgs[i] = dict(msgs[i])
        msgs[i]["content"], used = cut_content(msgs[i].get("content"), max(left, 0))
        left -= used
    view["messages"] = msgs
    return view, total


class RateLimiter:
    """Requests per minute per key: a token bucket in-process, or a per-minute counter in Redis (shared).

    With Redis down (``guard`` open, or a failed call), ``on_store_error`` decides: ``fail_open``
    (the default) counts the call in the in-process bucket instead (each replica then limits alone:
    a key may get up to rpm per replica), ``fail_closed`` refuses it with 529 ``overloaded_error``."""

    def __init__(self, redis_url: str = "", clock: Any = time.monotonic, *, client: Any = None, guard: Any = None,
                 on_store_error: str = "fail_open") -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._redis: Any = client
        self._own = False
        self.on_store_error = on_store_error
        if self._redis is None and redis_url:
            from ..config import DEFAULTS
            from ..resilience.stores import redis_client

            self._redis = redis_client(redis_url, DEFAULTS["resilience"]["redis"])
            self._own = True
        self.guard = guard
        if self._redis is not None and guard is None:
            from ..resilience.stores import StoreGuard

            self.guard = StoreGuard("redis")

    async def check(self, key_id: str, rpm: int) -> None:
        if self._redis is not None:
            from ..resilience.stores import StoreUnavailable

            minute = int(time.time() // 60)
            rk = f"tierwise:rpm:{key_id}:{minute}"

            async def count() -> Any:
                pipe = self._redis.pipeline()
                pipe.incr(rk)
                pipe.expire(rk, 120)
                return await pipe.execute()

            try:
                n, _ = await self.guard.run(count)
            except StoreUnavailable as exc:
                self.guard.fell_back("rate_limits")
                if self.on_store_error == "fail_closed":
                    from ..errors import OverloadedError

                    raise OverloadedError(f"rate limit store unavailable ({exc.reason}): proxy key {key_id}'s requests "
                                          "per minute cannot be checked; try again shortly",
                                          headers={"retry-after": "1"}) from None
            else:
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
        if self._redis is not None and self._own:
            await self._redis.aclose()
