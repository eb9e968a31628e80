"""Shared stores (Redis, the ledger database used for budgets) behind a small circuit each: a store
that fails (refused, cut), or times out ``open_after`` (3) calls in a row, is left alone for ``retry_interval`` seconds, during which its users fall back at once
(no connect attempt, no timeout on the request's path); then one call probes it, and its success
closes the circuit. Every fallback is counted (``fallbacks``, by use) for ``/metrics``, logged
(loudly once, then at most every 30 seconds) and reported by ``/healthz`` as degraded.

What each user does while its store is down is its own policy (docs/production.md, "When a shared
store fails"): rate limits and the breaker fall back to in-process state; budgets fail closed (529)
or open (in-process accounting, replayed to the store when it is back) as configured.

The Redis client is one per process, on a ``BlockingConnectionPool``: a burst waits (at most
``pool_timeout`` seconds) for a free connection instead of failing; no client-side retries (the
circuit decides), short connect and read timeouts.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any, Awaitable, Callable, Mapping, TypeVar

__all__ = ["StoreGuard", "StoreUnavailable", "redis_client", "STORE_ERRORS"]

log = logging.getLogger("tierwise.stores")

T = TypeVar("T")


class StoreUnavailable(Exception):
    """The store is down (its circuit is open, or this call failed)."""

    def __init__(self, store: str, reason: str) -> None:
        super().__init__(f"{store} unavailable ({reason})")
        self.store = store
        self.reason = reason


def _store_errors() -> tuple[type[BaseException], ...]:
    errs: list[type[BaseException]] = [OSError, asyncio.TimeoutError, ConnectionError]
    try:
        import redis.exceptions as rex

        errs.append(rex.RedisError)
    except ImportError:  # pragma: no cover - redis is an optional extra
        pass
    try:
        import sqlalchemy.exc as sex

        errs += [sex.DBAPIError, sex.TimeoutError, sex.DisconnectionError]  # any database error is a store condition
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


STORE_ERRORS: tuple[type[BaseException], ...] = ()


def _pool_exhausted(exc: BaseException) -> bool:
    """redis-py's BlockingConnectionPool waited ``pool_timeout`` without a free connection."""
    return type(exc).__name__ == "ConnectionError" and "No connection available" in str(exc)


class StoreGuard:
    def __init__(self, name: str, *, retry_interval: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 probe: Callable[[], Awaitable[Any]] | None = None, open_after: int = 3) -> None:
        global STORE_ERRORS
        if not STORE_ERRORS:
            STORE_ERRORS = _store_errors()
        self.name = name
        self.retry_interval = retry_interval
        self.clock = clock
        self.available = True
        self.error: str | None = None
        self.failures = 0
        self.busy = 0        # calls that found no free pooled connection within pool_timeout
        self.open_after = open_after  # consecutive failures (timeouts) that open the circuit; a refusal opens it at once
        self._streak = 0
        self.fallbacks: collections.Counter[str] = collections.Counter()
        self._retry_at = 0.0
        self._probing = False
        self._down_since: float | None = None
        self._logged_at = 0.0
        self._on_back: list[Callable[[], Any]] = []
        self.probe = probe  # when set, a down store is probed off the request path (no request waits on it)
        self._probe_task: asyncio.Task[Any] | None = None

    def on_back(self, fn: Callable[[], Any]) -> None:
        """Call ``fn`` (may return an awaitable, run as a task) each time the store is reachable again."""
        self._on_back.append(fn)

    def usable(self) -> bool:
        """True when a call may go to the store: closed, or the one probe after ``retry_interval``."""
        if self.available:
            return True
        if not self._probing and self.clock() >= self._retry_at:
            if self.probe is not None:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                if loop is not None:
                    self._probing = True
                    self._probe_task = loop.create_task(self._background_probe())
                    return False
            self._probing = True
            return True
        return False

    async def _background_probe(self) -> None:
        assert self.probe is not None
        try:
            await self.probe()
        except STORE_ERRORS as exc:
            self.failed(exc)
        except Exception as exc:  # noqa: BLE001 - an unexpected answer: still down
            self.failed(exc)
        else:
            self.ok()
        finally:
            self._probing = False

    def ok(self) -> None:
        self._streak = 0
        if self.available:
            return
        self.available, self._probing, self.error = True, False, None
        log.warning("%s reachable again after %.1fs", self.name, self.clock() - (self._down_since or self.clock()))
        self._down_since = None
        for fn in self._on_back:
            try:
                res = fn()
                if asyncio.iscoroutine(res):
                    asyncio.get_running_loop().create_task(res)
            except Exception:
                log.exception("%s: a recovery hook failed", self.name)

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        self._streak += 1
        now = self.clock()
        self.error = type(exc).__name__
        self._retry_at = now + self.retry_interval
        self._probing = False
        if self.available and self._streak < self.open_after and "timeout" in type(exc).__name__.lower():
            return  # one slow call under load is not an outage: that call falls back, the next ones try
        if self.available:
            self.available = False
            self._down_since = now
            self._logged_at = now
            log.error("%s UNAVAILABLE (%s: %s): falling back (see docs/production.md); probing every %.1fs", self.name,
                      self.error, str(exc).splitlines()[0][:200] if str(exc) else "", self.retry_interval)
        elif now - self._logged_at >= 30.0:
            self._logged_at = now
            log.error("%s still unavailable after %.0fs (%s); fallbacks so far: %s", self.name,
                      now - (self._down_since or now), self.error, dict(self.fallbacks))

    def fell_back(self, use: str) -> None:
        self.fallbacks[use] += 1

    async def run(self, op: Callable[[], Awaitable[T]]) -> T:
        """``await op()`` through the circuit; StoreUnavailable when the store is down or the call fails."""
        if not self.usable():
            raise StoreUnavailable(self.name, self.error or "down")
        try:
            out = await op()
        except STORE_ERRORS as exc:
            if _pool_exhausted(exc):  # local backpressure, not an outage: this call falls back, the circuit stays
                self.busy += 1
                if self._probing:
                    self._probing = False
                raise StoreUnavailable(self.name, "no free connection in the pool") from exc
            self.failed(exc)
            raise StoreUnavailable(self.name, type(exc).__name__) from exc
        except Exception:  # the store answered (e.g. a budget it refuses): it is up
            self.ok()
            raise
        except BaseException:
            if self._probing:  # a cancelled probe says nothing: let the next call probe
                self._probing = False
            raise
        self.ok()
        return out

    def status(self) -> dict[str, Any]:
        return {"available": self.available, "error": self.error, "failures": self.failures, "pool_exhausted": self.busy,
                "down_for_s": round(self.clock() - self._down_since, 1) if self._down_since else 0.0,
                "fallbacks": dict(self.fallbacks)}


def redis_client(url: str, conf: Mapping[str, Any]) -> Any:
    """One asyncio Redis client for the process: a pool that waits, short timeouts, no client retries."""
    import redis.asyncio as aioredis  # lazy: only when Redis is configured
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=int(conf["max_connections"]), timeout=float(conf["pool_timeout"]),
        socket_timeout=float(conf["timeout"]), socket_connect_timeout=float(conf["connect_timeout"]),
        retry=Retry(NoBackoff(), 0))
    return aioredis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
