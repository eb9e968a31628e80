"""A circuit breaker per (upstream, model): in-process by default, shared through Redis when configured.

States: **closed** (calls flow; the last ``window`` outcomes are kept), **open** (after at least
``min_requests`` outcomes with a failure rate >= ``failure_rate``: calls are refused without
reaching the upstream for ``cooldown`` seconds), **half-open** (after the cooldown up to
``half_open_probes`` calls go through; a success closes the circuit, a failure opens it again).

What counts as a failure: transport errors, timeouts, 500-class and 529 answers. A 429 does not
open the circuit (its ``retry-after`` is honoured instead) and neither does any other 4xx: a
caller's bad request says nothing about the upstream's health.

``RedisBreaker`` keeps the same logic but stores the window counts and the open/half-open state
in Redis (one Lua script per outcome, run off the request's path), so every replica behind a load
balancer sees a circuit opened by any of them; each replica's ``allow()`` reads a local mirror
refreshed by those scripts and by a poll every ``sync_interval`` seconds. While Redis is down (its
``StoreGuard`` open, see ``tierwise.resilience.stores``) the breaker is not disabled: each replica
decides from its own in-process circuits, fed by the same outcomes, until Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["CircuitBreaker", "RedisBreaker", "build_breaker", "counts_as_failure"]

log = logging.getLogger("tierwise.breaker")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def counts_as_failure(status: int | None) -> bool:
    return status is None or status >= 500 or status == 408


@dataclass(slots=True)
class _Circuit:
    outcomes: deque[bool] = field(default_factory=deque)
    failures: int = 0
    state: str = CLOSED
    opened_until: float = 0.0
    probes: int = 0


class CircuitBreaker:
    """In-process breaker. ``allow(key)`` before a call, ``record(key, ok)`` after it."""

    shared = False

    def __init__(self, *, window: int = 100, min_requests: int = 20, failure_rate: float = 0.5, cooldown: float = 5.0,
                 half_open_probes: int = 1, clock: Callable[[], float] = time.time) -> None:
        self.window = max(1, int(window))
        self.min_requests = max(1, int(min_requests))
        self.failure_rate = float(failure_rate)
        self.cooldown = float(cooldown)
        self.half_open_probes = max(1, int(half_open_probes))
        self.clock = clock
        self._c: dict[tuple[str, str], _Circuit] = {}

    def _get(self, key: tuple[str, str]) -> _Circuit:
        c = self._c.get(key)
        if c is None:
            c = self._c[key] = _Circuit()
        return c

    def state(self, key: tuple[str, str]) -> str:
        c = self._c.get(key)
        if c is None:
            return CLOSED
        if c.state == OPEN and self.clock() >= c.opened_until:
            return HALF_OPEN
        return c.state

    def retry_in(self, key: tuple[str, str]) -> float:
        c = self._c.get(key)
        return max(0.0, c.opened_until - self.clock()) if c is not None and c.state == OPEN else 0.0

    def allow(self, key: tuple[str, str]) -> bool:
        c = self._c.get(key)
        if c is None or c.state == CLOSED:
            return True
        if c.state == OPEN:
            if self.clock() < c.opened_until:
                return False
            c.state, c.probes = HALF_OPEN, 0
        if c.probes >= self.half_open_probes:
            return False
        c.probes += 1
        return True

    def release(self, key: tuple[str, str]) -> None:
        """A call allowed by ``allow`` ended without an outcome about the upstream (e.g. the client left)."""
        c = self._c.get(key)
        if c is not None and c.state == HALF_OPEN and c.probes > 0:
            c.probes -= 1

    def record(self, key: tuple[str, str], ok: bool) -> None:
        c = self._get(key)
        if c.state == HALF_OPEN:
            if ok:
                self._close(c)
            else:
                self._open(c, key)
            return
        if c.state == OPEN:  # an outcome of a call that started before the circuit opened
            return
        c.outcomes.append(ok)
        if not ok:
            c.failures += 1
        if len(c.outcomes) > self.window:
            if not c.outcomes.popleft():
                c.failures -= 1
        n = len(c.outcomes)
        if n >= self.min_requests and c.failures / n >= self.failure_rate:
            self._open(c, key)

    def _close(self, c: _Circuit) -> None:
        c.state, c.probes, c.failures, c.opened_until = CLOSED, 0, 0, 0.0
        c.outcomes.clear()

    def _open(self, c: _Circuit, key: tuple[str, str]) -> None:
        c.state, c.probes = OPEN, 0
        c.opened_until = self.clock() + self.cooldown
        c.outcomes.clear()
        c.failures = 0
        log.warning("circuit open for %s/%s for %.1fs", key[0], key[1], self.cooldown)

    def snapshot(self) -> dict[str, str]:
        return {f"{k[0]}/{k[1]}": self.state(k) for k in self._c}

    async def aclose(self) -> None:
        return None


# KEYS[1] = circuit hash. ARGV: ok(0/1), now, window, min_requests, failure_rate, cooldown
# The window is approximated by counts that halve once they pass ``window`` outcomes.
_RECORD = """
local k = KEYS[1]
local ok = tonumber(ARGV[1]); local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3]); local minreq = tonumber(ARGV[4])
local rate = tonumber(ARGV[5]); local cooldown = tonumber(ARGV[6])
local st = redis.call('HGET', k, 'state') or 'closed'
local until_ = tonumber(redis.call('HGET', k, 'until') or '0')
if st == 'open' and now >= until_ then st = 'half_open' end
if st == 'half_open' then
  if ok == 1 then
    redis.call('DEL', k)
    return {'closed', '0'}
  end
  redis.call('HSET', k, 'state', 'open', 'until', tostring(now + cooldown), 'n', '0', 'f', '0')
  redis.call('HDEL', k, 'probes')
  redis.call('PEXPIRE', k, math.floor((cooldown + 3600) * 1000))
  return {'open', tostring(now + cooldown)}
end
if st == 'open' then return {'open', tostring(until_)} end
local n = redis.call('HINCRBY', k, 'n', 1)
local f = tonumber(redis.call('HGET', k, 'f') or '0')
if ok == 0 then f = redis.call('HINCRBY', k, 'f', 1) end
if n > window then
  n = math.floor(n / 2); f = math.floor(f / 2)
  redis.call('HSET', k, 'n', tostring(n), 'f', tostring(f))
end
redis.call('PEXPIRE', k, 3600000)
if n >= minreq and f / n >= rate then
  redis.call('HSET', k, 'state', 'open', 'until', tostring(now + cooldown), 'n', '0', 'f', '0')
  redis.call('PEXPIRE', k, math.floor((cooldown + 3600) * 1000))
  return {'open', tostring(now + cooldown)}
end
return {'closed', '0'}
"""

class RedisBreaker(CircuitBreaker):
    """The same breaker with its state in Redis, shared by every replica using the same Redis."""

    shared = True

    def __init__(self, url: str, *, prefix: str = "tierwise:breaker:", sync_interval: float = 1.0, client: Any = None,
                 guard: Any = None, **kw: Any) -> None:
        super().__init__(**kw)
        from .stores import StoreGuard, redis_client

        self.url = url
        self.prefix = prefix
        self.sync_interval = sync_interval
        self._own = client is None
        if client is None:
            from ..config import DEFAULTS

            client = redis_client(url, DEFAULTS["resilience"]["redis"])
        self._redis = client
        self.guard = guard if guard is not None else StoreGuard("redis")
        self._record = self._redis.register_script(_RECORD)
        self._mirror: dict[tuple[str, str], float] = {}  # key -> open until (wall clock); absent = closed
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_sync = 0.0

    def _rkey(self, key: tuple[str, str]) -> str:
        return f"{self.prefix}{key[0]}:{key[1]}"

    def state(self, key: tuple[str, str]) -> str:
        if not self.guard.available:
            return super().state(key)
        until = self._mirror.get(key)
        if until is None:
            return CLOSED
        return OPEN if self.clock() < until else HALF_OPEN

    def retry_in(self, key: tuple[str, str]) -> float:
        if not self.guard.available:
            return super().retry_in(key)
        until = self._mirror.get(key)
        return max(0.0, until - self.clock()) if until is not None else 0.0

    def allow(self, key: tuple[str, str]) -> bool:
        self._maybe_sync()
        if not self.guard.available:  # Redis is down: this replica's own circuits decide
            self.guard.fell_back("breaker")
            return super().allow(key)
        until = self._mirror.get(key)
        if until is None:
            return True
        if self.clock() < until:
            return False
        # half-open: each replica lets ``half_open_probes`` calls through per cooldown
        c = self._get(key)
        if c.state != HALF_OPEN:
            c.state, c.probes = HALF_OPEN, 0
        if c.probes >= self.half_open_probes:
            return False
        c.probes += 1
        return True

    def record(self, key: tuple[str, str], ok: bool) -> None:
        if not self.guard.usable():
            self.guard.fell_back("breaker")
            super().record(key, ok)
            return
        self.guard._probing = False  # usable() may have taken the probe slot: record_async takes it again
        try:
            task = asyncio.get_running_loop().create_task(self.record_async(key, ok))
        except RuntimeError:
            super().record(key, ok)
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def record_async(self, key: tuple[str, str], ok: bool) -> str:
        from .stores import StoreUnavailable

        try:
            st, until = await self.guard.run(lambda: self._record(keys=[self._rkey(key)], args=[
                1 if ok else 0, self.clock(), self.window, self.min_requests, self.failure_rate, self.cooldown]))
        except StoreUnavailable:
            self.guard.fell_back("breaker")
            super().record(key, ok)
            return super().state(key)
        st = st.decode() if isinstance(st, bytes) else st
        if st == CLOSED:
            self._mirror.pop(key, None)
            self._c.pop(key, None)
        else:
            self._mirror[key] = float(until)
            c = self._get(key)
            c.state, c.probes = OPEN, 0
            c.opened_until = float(until)
        return self.state(key)

    def _maybe_sync(self) -> None:
        now = time.monotonic()
        if now - self._last_sync < self.sync_interval:
            return
        self._last_sync = now
        try:
            task = asyncio.get_running_loop().create_task(self.sync())
        except RuntimeError:
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sync(self) -> None:
        """Refresh the local mirror of every circuit from Redis."""
        from .stores import StoreUnavailable

        async def read() -> dict[tuple[str, str], float]:
            keys = [k async for k in self._redis.scan_iter(match=self.prefix + "*", count=500)]
            mirror: dict[tuple[str, str], float] = {}
            for rk in keys:
                st, until = await self._redis.hmget(rk, "state", "until")
                if st is None:
                    continue
                name = (rk.decode() if isinstance(rk, bytes) else rk)[len(self.prefix):]
                up, _, model = name.partition(":")
                mirror[(up, model)] = float(until or 0)
            return mirror

        was_down = not self.guard.available
        try:
            mirror = await self.guard.run(read)
        except StoreUnavailable:
            return
        if was_down:
            self._c.clear()  # Redis is back: the shared state decides again
        for key in list(self._mirror):
            if key not in mirror:
                self._c.pop(key, None)
        self._mirror = mirror

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._own:
            await self._redis.aclose()


def build_breaker(conf: dict[str, Any], redis_url: str = "", *, client: Any = None, guard: Any = None) -> CircuitBreaker | None:
    if not conf.get("enabled", True):
        return None
    kw = {"window": conf["window"], "min_requests": conf["min_requests"], "failure_rate": conf["failure_rate"],
          "cooldown": conf["cooldown"], "half_open_probes": conf["half_open_probes"]}
    if redis_url:
        return RedisBreaker(redis_url, client=client, guard=guard, **kw)
    return CircuitBreaker(**kw)
