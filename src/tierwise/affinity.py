"""Thinking affinity: a conversation that sends thinking blocks back stays on the model that wrote them.

Anthropic binds thinking blocks to the model and conversation that produced them, so a routed
request that moves to another model must not carry them (:mod:`tierwise.adapt` strips them). In a
tool-use loop with thinking under ``auto`` that would drop the model's reasoning between steps and
the prompt cache with it. So the proxy remembers, for every thinking block it hands back to a
client, which model wrote it: a 16-byte digest of the block's ``signature`` (or of a
``redacted_thinking`` block's ``data``), nothing of its text. When a routed request's last assistant
turn carries a thinking block whose digest is known, the request stays on that model and its
thinking blocks are kept (the decision's reasons say so). Unknown blocks (written before a restart,
by another worker process, or by a call that did not go through tierwise) are stripped as before.

The memory is per process and bounded (least recently used digests are forgotten first): about
150 bytes per remembered block. With ``resilience.redis_url`` set it is also shared: each digest ->
model is written to Redis (expiring after ``ttl``), and the proxy's async path looks up the digests
of a request's last assistant turn there first (:meth:`ThinkingAffinity.aprefetch`), so a
conversation whose turns land on different replicas keeps its thinking blocks on their model.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from typing import Any, Iterable

import orjson

__all__ = ["ThinkingAffinity", "thinking_keys", "message_thinking_keys", "response_thinking_keys"]

_THINKING = ("thinking", "redacted_thinking")


def _digest(value: str) -> bytes:
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _field(block: Any, name: str) -> Any:
    """A content block's field, from a dict (the wire) or an SDK object (``tierwise.Client``)."""
    return block.get(name) if isinstance(block, dict) else getattr(block, name, None)


def _block_key(block: Any) -> str | None:
    kind = _field(block, "type")
    if kind == "thinking":
        sig = _field(block, "signature")
    elif kind == "redacted_thinking":
        sig = _field(block, "data")
    else:
        return None
    return sig if isinstance(sig, str) and sig else None


def thinking_keys(body: Any) -> list[str]:
    """Signatures (or redacted data) of the thinking blocks in a request's last assistant turn."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return []
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "assistant":
            content = msg.get("content")
            if not isinstance(content, list):
                return []
            return [k for k in map(_block_key, content) if k]
    return []


def message_thinking_keys(message: Any) -> list[str]:
    """Signatures in a Messages response (a parsed dict, or the SDK's ``Message``)."""
    content = _field(message, "content")
    if not isinstance(content, list):
        return []
    return [k for k in map(_block_key, content) if k]


def response_thinking_keys(raw: bytes) -> list[str]:
    """Signatures in a non-streaming Messages response body (cheap when it has no thinking)."""
    if b'"signature"' not in raw and b'"redacted_thinking"' not in raw:
        return []
    try:
        return message_thinking_keys(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return []


class ThinkingAffinity:
    """Digest of a thinking block -> the model id that wrote it (bounded LRU)."""

    def __init__(self, capacity: int = 100_000, redis_url: str = "", ttl: int = 86_400,
                 prefix: str = "tierwise:thinking:") -> None:
        if capacity < 1:
            raise ValueError("thinking affinity capacity must be at least 1")
        self.capacity = capacity
        self._map: OrderedDict[bytes, str] = OrderedDict()
        self.ttl = ttl
        self.prefix = prefix
        self._redis: Any = None
        self._pending: set[Any] = set()
        if redis_url:
            import redis.asyncio as aioredis  # lazy: only when configured

            self._redis = aioredis.from_url(redis_url, socket_timeout=0.05, socket_connect_timeout=0.2)

    def __len__(self) -> int:
        return len(self._map)

    def remember(self, keys: Iterable[str], model: str | None) -> None:
        if not model:
            return
        m = self._map
        new: list[bytes] = []
        for key in keys:
            d = _digest(key)
            m[d] = model
            m.move_to_end(d)
            new.append(d)
        while len(m) > self.capacity:
            m.popitem(last=False)
        if self._redis is not None and new:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no event loop (the sync Client): this process's memory only
            task = loop.create_task(self._share(new, model))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _share(self, digests: list[bytes], model: str) -> None:
        try:
            pipe = self._redis.pipeline()
            for d in digests:
                pipe.set(self.prefix + d.hex(), model, ex=self.ttl)
            await pipe.execute()
        except Exception:  # noqa: BLE001 - not shared this time; this process still knows
            pass

    async def aflush(self) -> None:
        """Wait for the writes to Redis started by :meth:`remember` (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aprefetch(self, body: Any) -> None:
        """Load from Redis the digests of the request's last assistant turn this process does not know."""
        if self._redis is None:
            return
        missing = [d for d in (_digest(k) for k in thinking_keys(body)) if d not in self._map]
        if not missing:
            return
        try:
            values = await self._redis.mget([self.prefix + d.hex() for d in missing])
        except Exception:  # noqa: BLE001 - Redis down: decide on this process's memory
            return
        for d, v in zip(missing, values):
            if v is not None:
                self._map[d] = v.decode() if isinstance(v, bytes) else str(v)
        while len(self._map) > self.capacity:
            self._map.popitem(last=False)

    async def aclose(self) -> None:
        await self.aflush()
        if self._redis is not None:
            await self._redis.aclose()

    def model_for(self, body: Any) -> str | None:
        """The model that wrote the thinking blocks of the request's last assistant turn, if known.

        All known blocks must agree; a turn whose blocks came from different models (or from none we
        saw) has no affinity."""
        digests = [_digest(k) for k in thinking_keys(body)]
        models = {self._map.get(d) for d in digests}
        if len(models) != 1 or None in models:
            return None
        for d in digests:
            self._map.move_to_end(d)
        return models.pop()

    def wrote(self, block: Any, model: str) -> bool:
        """Whether ``model`` wrote this thinking block (as far as this process saw)."""
        key = _block_key(block)
        return key is not None and self._map.get(_digest(key)) == model
