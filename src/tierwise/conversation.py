"""Which model a conversation is on: in-process (bounded LRU with expiry), shared through Redis when
``resilience.redis_url`` is set, so every replica keeps a conversation on the same model.

A conversation is recognised from what every turn repeats: the client's ``metadata.user_id``
(Claude Code puts its session there), the head of the system prompt, the number of tools and the
head of the first user message. Only a 16-byte digest of those is kept, never the text. Entries
expire ``ttl`` seconds after the last turn (a prompt cache does not outlive an hour either). The
time of the last turn is kept too (wall clock, comparable across replicas): it tells whether the
conversation's prompt cache is still warm.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any, Callable

__all__ = ["ConversationState", "conversation_key"]

_HEAD = 256


def _first_text(content: Any) -> str:
    if isinstance(content, str):
        return content[:_HEAD]
    if isinstance(content, list):
        for b in content[:8]:
            if isinstance(b, dict) and isinstance(text := b.get("text"), str):
                return text[:_HEAD]
            if isinstance(b, dict) and b.get("type") == "tool_result":
                return "tool_result:" + str(b.get("tool_use_id"))[:64]
    return ""


def conversation_key(body: dict[str, Any]) -> bytes | None:
    """A digest that stays the same across the turns of one conversation (None: nothing to go by)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    first = messages[0]
    first_text = _first_text(first.get("content")) if isinstance(first, dict) else ""
    meta = body.get("metadata")
    user = str(meta.get("user_id"))[:200] if isinstance(meta, dict) and meta.get("user_id") else ""
    system = body.get("system")
    if isinstance(system, str):
        sys_head = system[:_HEAD]
    elif isinstance(system, list):
        sys_head = "|".join(b.get("text", "")[:64] for b in system[:4] if isinstance(b, dict) and isinstance(b.get("text"), str))
    else:
        sys_head = ""
    tools = body.get("tools")
    n_tools = len(tools) if isinstance(tools, list) else 0
    if not (first_text or user):
        return None
    raw = f"{user}\x00{sys_head}\x00{n_tools}\x00{first_text}"
    return hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class ConversationState:
    """conversation digest -> model id, bounded and expiring; Redis-backed when a URL is given
    (the async methods use it; the sync ones see this process's view only)."""

    def __init__(self, capacity: int = 50_000, ttl: float = 3600.0, redis_url: str = "",
                 clock: Callable[[], float] = time.time, prefix: str = "tierwise:conv:") -> None:
        if capacity < 1:
            raise ValueError("conversation capacity must be at least 1")
        self.capacity = capacity
        self.ttl = ttl
        self.clock = clock
        self.prefix = prefix
        self._map: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._redis: Any = None
        if redis_url:
            import redis.asyncio as aioredis  # lazy: only when configured

            self._redis = aioredis.from_url(redis_url, socket_timeout=0.05, socket_connect_timeout=0.2)

    def __len__(self) -> int:
        return len(self._map)

    @property
    def shared(self) -> bool:
        return self._redis is not None

    def get(self, key: bytes | None) -> tuple[str, float] | None:
        """(model, seconds since the conversation's last turn), or None."""
        if key is None:
            return None
        hit = self._map.get(key)
        if hit is None:
            return None
        model, last = hit
        now = self.clock()
        if last + self.ttl <= now:
            del self._map[key]
            return None
        self._map.move_to_end(key)
        return model, max(0.0, now - last)

    def put(self, key: bytes | None, model: str | None, when: float | None = None) -> None:
        if key is None or not model:
            return
        m = self._map
        m[key] = (model, self.clock() if when is None else when)
        m.move_to_end(key)
        while len(m) > self.capacity:
            m.popitem(last=False)

    async def aget(self, key: bytes | None) -> tuple[str, float] | None:
        """As :meth:`get`, from Redis when shared (this process's view if Redis fails)."""
        if key is None:
            return None
        if self._redis is not None:
            try:
                raw = await self._redis.get(self.prefix + key.hex())
            except Exception:  # noqa: BLE001 - Redis down: this process's view is the best we have
                return self.get(key)
            if raw is not None:
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                model, _, stamp = text.rpartition("|")
                try:
                    when = float(stamp)
                except ValueError:
                    return self.get(key)
                self.put(key, model, when)
                return self.get(key)
            return self.get(key)
        return self.get(key)

    async def aput(self, key: bytes | None, model: str | None) -> None:
        self.put(key, model)
        if self._redis is not None and key is not None and model:
            try:
                await self._redis.set(self.prefix + key.hex(), f"{model}|{self.clock():.3f}", ex=max(1, int(self.ttl)))
            except Exception:  # noqa: BLE001 - not shared this time; the local entry stands
                pass

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
