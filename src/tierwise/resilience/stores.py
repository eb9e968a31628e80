"""Shared stores (Redis, the ledger database used for budgets) behind a small circuit each: a store
that fails (refused, cut), or times out ``open_after`` (3) calls in a row, is left alone for ``retry_interval`` seconds, during which its users fall back at once
(no connect attempt, no timeout on the request's path); then one call probes it, and its success
closes the circuit. Every fallback is counted (``fallbacks``, by use) for ``/metrics``, logged
(loudly once, then at most every 30 seconds) and reported by ``/healthz`` as degraded.

What each user does while its store is down is its own policy (docs/production.md, "When a shared
store fails"): rate limits and the breaker fall back to in-process state; budgets fail closed (529)
or open (in-process accounting, replayed to the store when it is back) as configured.

Slow under load is told apart from down by *silence* (``silence``: ``SILENCE``, 50 ms, for Redis,
or 4x the store's recent mean answer time when that is longer, at most 1 s, once the store has
answered ``WARM`` calls; before that, its pace unknown, a fixed conservative ``cold`` window,
``COLD_SILENCE``, 250 ms, five times the warm one): a call still waiting after that long looks at whether the store answered any other call
meanwhile. If it did, the store is slow, not down (a loaded machine): the call keeps waiting, up to
the client's own timeout. If nothing came back from the store for two such windows in a row while
calls waited (and this process's event loop was not itself late), the store is down: the circuit opens at once and
every call waiting on it fails at that moment (they fall back together, none waits for its own
timeout), and a background probe starts right away, so a false alarm closes the circuit as soon as
the store answers the probe. A call that failed while *connecting* (the command was never sent, so
running it again cannot apply it twice) is tried once more when the store answered others meanwhile.

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

SILENCE = 0.05  # ``silence`` of the Redis circuit (runtime.py)
SLOW_FACTOR = 4.0  # silence means down only past this many times the store's recent mean answer time
WARM = 20          # answers to see before the store's own pace sets the silence window
COLD_SILENCE = 0.25  # the silence window before WARM answers (pace unknown): a Redis unreachable from the
                     # start costs the first calls at most two of these, not their own 1 s timeout each


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


class StoreSilent(Exception):
    """Nothing came back from the store for ``silence`` seconds while calls waited on it."""


def _while_connecting(exc: BaseException) -> bool:
    """redis-py failed to open a connection (the command was not sent: running it again is safe)."""
    return "connecting to" in str(exc)


def _pool_exhausted(exc: BaseException) -> bool:
    """redis-py's BlockingConnectionPool waited ``pool_timeout`` without a free connection."""
    return type(exc).__name__ == "ConnectionError" and "No connection available" in str(exc)


class StoreGuard:
    def __init__(self, name: str, *, retry_interval: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 probe: Callable[[], Awaitable[Any]] | None = None, open_after: int = 3,
                 silence: float | None = None, cold: float = COLD_SILENCE) -> None:
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
        self.silence = silence    # None: each call waits for its own timeout (the database's circuit)
        self.cold = cold          # the silence window until the store has answered WARM calls
        self._answered_at = -1e18  # loop time of the store's last answer (success or an error it sent)
        self._trip: asyncio.Future[None] | None = None  # done when the circuit opens: waiters fail with it
        self.waiters = 0          # calls in flight right now
        self.tripped = 0          # times silence opened the circuit
        self.failed_together = 0  # in-flight calls failed at once by an opening circuit
        self.reconnects = 0       # calls retried after a failure while connecting
        self.slow = 0             # calls that timed out while the store answered others (not counted as failures)
        self._seen = 0            # answers seen by watched calls (before WARM of them, the cold window)
        self._pace = 0.0          # the store's recent mean answer time, seconds (moving average)

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

    def _schedule_probe(self) -> None:
        """Probe a down store on a timer too, not only when a request asks: with no traffic the circuit
        still closes (and the hooks replay what the store missed) as soon as the store is back."""
        if self.probe is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_later(max(0.0, self._retry_at - self.clock()) + 0.01, self._kick)

    def _kick(self) -> None:
        if not self.available and not self._probing:
            if self.clock() >= self._retry_at:
                self.usable()  # starts the background probe
            else:
                self._schedule_probe()

    async def _background_probe(self) -> None:
        assert self.probe is not None
        try:
            await self.probe()
        except STORE_ERRORS as exc:
            self.failed(exc)
            self._schedule_probe()
        except Exception as exc:  # noqa: BLE001 - an unexpected answer: still down
            self.failed(exc)
            self._schedule_probe()
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
            trip, self._trip = self._trip, None
            if trip is not None and not trip.done():
                trip.set_result(None)  # every call waiting on the store falls back now
            self._schedule_probe()
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
        retried = False
        while True:
            start = self.clock()
            try:
                out = await (self._watched(op) if self.silence is not None else op())
            except StoreSilent as exc:
                self._open_silent(exc)
                raise StoreUnavailable(self.name, "no answer") from exc
            except _Tripped:
                self.failed_together += 1
                raise StoreUnavailable(self.name, self.error or "down") from None
            except STORE_ERRORS as exc:
                if _pool_exhausted(exc):  # local backpressure, not an outage: this call falls back, the circuit stays
                    self.busy += 1
                    if self._probing:
                        self._probing = False
                    raise StoreUnavailable(self.name, "no free connection in the pool") from exc
                if (not retried and self.silence is not None and _while_connecting(exc) and self.available
                        and self._answered_at > start):
                    retried = True  # slow to connect under load while the store answers others: once more
                    self.reconnects += 1
                    continue
                if (self.silence is not None and self.available and self._answered_at > start
                        and "timeout" in type(exc).__name__.lower()):
                    self.slow += 1  # timed out while the store answered others: slow, not down; this call alone falls back
                    raise StoreUnavailable(self.name, "slow answer") from exc
                self.failed(exc)
                raise StoreUnavailable(self.name, type(exc).__name__) from exc
            except Exception:  # the store answered (e.g. a budget it refuses): it is up
                self._answered_at = self.clock()
                self.ok()
                raise
            except BaseException:
                if self._probing:  # a cancelled probe says nothing: let the next call probe
                    self._probing = False
                raise
            self._answered_at = self.clock()
            self.ok()
            return out

    async def _watched(self, op: Callable[[], Awaitable[T]]) -> T:
        """``op()`` as a task, watched: fails with StoreSilent when the store answers no call for
        ``silence`` seconds while this one waits, and with _Tripped when the circuit opens meanwhile."""
        assert self.silence is not None
        loop = asyncio.get_running_loop()
        if self._trip is None or self._trip.done():
            self._trip = loop.create_future()
        trip = self._trip
        async def answered() -> T:
            t0 = self.clock()
            out = await op()  # an answer is noted as soon as it is read, not when this caller resumes
            self._note_answer(self.clock(), self.clock() - t0)
            return out

        task = asyncio.ensure_future(answered())
        self.waiters += 1
        start = self.clock()
        quiet = 0  # consecutive silent windows: two in a row mean down (one can be a starved Redis)
        try:
            while True:
                window = self.clock()
                limit = self.silence_limit(window)
                await asyncio.wait((task, trip), timeout=limit, return_when=asyncio.FIRST_COMPLETED)
                fired = self.clock()
                if not task.done() and not trip.done():
                    for _ in range(3):  # let the loop read what may have arrived while the timer was due
                        await asyncio.sleep(0)
                if task.done():
                    return task.result()
                if trip.done():
                    raise _Tripped()
                now = self.clock()
                if self._answered_at > window or fired - window > 1.5 * limit or now - fired > limit / 2:
                    # it answered others (slow, not down), or this loop is late or busy itself
                    quiet = 0
                    continue
                quiet += 1
                if quiet < 2:
                    continue
                raise StoreSilent(f"no answer from {self.name} for {now - start:.3f}s while {self.waiters} calls "
                                  f"waited (its recent mean answer: {self._pace * 1000:.1f} ms)")
        finally:
            self.waiters -= 1
            if not task.done():
                task.cancel()
                task.add_done_callback(_quiet)

    def _note_answer(self, now: float, took: float) -> None:
        self._answered_at = now
        self._seen += 1
        self._pace = took if self._seen == 1 else self._pace + (took - self._pace) * 0.05

    def silence_limit(self, now: float) -> float:
        """How long no answer at all means down: ``silence``, or SLOW_FACTOR x the store's recent mean
        answer time when it has been slower than that lately (a loaded machine), at most 1 s; until the
        store has answered WARM calls (its pace unknown) never less than the ``cold`` window."""
        assert self.silence is not None
        warm = min(max(self.silence, SLOW_FACTOR * self._pace), max(self.silence, 1.0))
        return warm if self._seen >= WARM else max(warm, self.cold)

    def _open_silent(self, exc: BaseException) -> None:
        """Silence is an outage: open now (not after ``open_after``), and probe at once in the background
        so that a false alarm (a store starved of CPU) ends as soon as the store answers."""
        was = self.available
        self._streak = max(self._streak, self.open_after)
        self.failed(exc)
        if was and not self.available:
            self.tripped += 1
            self._retry_at = self.clock()

    def status(self) -> dict[str, Any]:
        return {"available": self.available, "error": self.error, "failures": self.failures, "pool_exhausted": self.busy,
                "silence_trips": self.tripped, "failed_together": self.failed_together, "reconnects": self.reconnects,
                "slow_answers": self.slow,
                "down_for_s": round(self.clock() - self._down_since, 1) if self._down_since else 0.0,
                "fallbacks": dict(self.fallbacks)}


class _Tripped(Exception):
    """The circuit opened while this call waited."""


def _quiet(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a call abandoned by its circuit is not an "exception never retrieved"


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
