"""USD budgets per UTC day: per proxy key, per task type and overall, enforced atomically.

Before a call the proxy *reserves* an upper bound of its cost (prompt tokens estimated from the
body's size at 3 bytes a token, plus ``max_tokens`` of output, at the target's prices); the
reservation succeeds only if ``spent + reserved + estimate <= limit`` for every scope the request
falls under, in one atomic step (a conditional UPDATE in one transaction in the database, or one
Lua script in Redis). After the call the reservation is replaced by the actual cost, failed
attempts included. Concurrent requests can therefore never spend past a budget together; the
only overshoot possible is one request whose real cost beats its estimate.

When a reservation fails the configured action applies: ``refuse`` (429 ``rate_limit_error``
naming the budget and when it resets, with ``x-should-retry: false``) or ``downgrade`` (the
cheapest-first search for a lower tier the caller's key allows whose estimate fits).

A reservation survives no cancellation unnoticed: the write runs shielded from the caller, and
when the caller is cancelled mid-write (a client disconnect, a shutdown) the reservation, if it
was made, is released (settled at 0) as soon as the write lands, so the budget is never held until
the day rolls over. ``drain()`` (called by ``aclose()``) waits for such releases.

With no budget configured (no ``daily_usd``, no ``tasks``, no key with a budget) nothing here
runs on the request path.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Mapping

import sqlalchemy as sa

from .errors import ConfigError, RateLimitError
from .ledger.keys_schema import budget_spend

if TYPE_CHECKING:
    from .catalog import Model
    from .keys import KeyRecord

__all__ = ["Budgets", "BudgetExceeded", "Reservation", "estimate_nanos", "utc_day"]

NANOS = 1_000_000_000

log = logging.getLogger("tierwise.budgets")


def utc_day(now: _dt.datetime | None = None) -> str:
    return (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%d")


def _next_reset(day: str) -> _dt.datetime:
    d = _dt.date.fromisoformat(day) + _dt.timedelta(days=1)
    return _dt.datetime(d.year, d.month, d.day, tzinfo=_dt.timezone.utc)


def estimate_nanos(model: "Model", body_bytes: int, max_tokens: int) -> int:
    """An upper bound of a call's cost: every body byte a third of a token, all of max_tokens output."""
    prompt = body_bytes // 3 + 16
    rates = model.price_at().rates_for(prompt)
    return int((prompt * rates.input + max_tokens * rates.output) * 1000)


@dataclass(slots=True)
class Reservation:
    scopes: list[tuple[str, int]]      # (scope, limit nanos)
    day: str
    amount: int
    settled: bool = False


class BudgetExceeded(RateLimitError):
    def __init__(self, scope: str, limit: int, spent: int, day: str) -> None:
        reset = _next_reset(day)
        label = {"all": "the overall daily budget"}.get(scope) or (
            f"the daily budget of proxy key {scope[4:]}" if scope.startswith("key:") else f"the daily budget of task type {scope[5:]!r}")
        secs = max(1, int((reset - _dt.datetime.now(_dt.timezone.utc)).total_seconds()))
        super().__init__(f"budget exceeded: this request would take {label} (${Decimal(limit) / NANOS:.2f} per UTC day; "
                         f"${Decimal(spent) / NANOS:.4f} spent or reserved) over its limit; it resets at "
                         f"{reset.strftime('%Y-%m-%dT%H:%M:%SZ')}", headers={"x-should-retry": "false", "retry-after": str(secs)})
        self.scope = scope
        self.reset = reset


# KEYS: one hash per scope. ARGV[1] = amount, ARGV[2..] = limits (same order). Returns 0 on success,
# else the 1-based index of the first scope that would go over, followed by its spent+reserved.
_RESERVE = """
local amount = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  local s = tonumber(redis.call('HGET', k, 'spent') or '0')
  local r = tonumber(redis.call('HGET', k, 'reserved') or '0')
  if s + r + amount > tonumber(ARGV[i + 1]) then return {i, s + r} end
end
for i, k in ipairs(KEYS) do
  redis.call('HINCRBY', k, 'reserved', amount)
  redis.call('EXPIRE', k, 259200)
end
return {0, 0}
"""
_SETTLE = """
for i, k in ipairs(KEYS) do
  redis.call('HINCRBY', k, 'reserved', -tonumber(ARGV[1]))
  redis.call('HINCRBY', k, 'spent', tonumber(ARGV[2]))
end
return 1
"""


class Budgets:
    def __init__(self, conf: Mapping[str, Any], *, engine: sa.Engine | None, redis_url: str = "") -> None:
        self.action = str(conf.get("action", "refuse"))
        if self.action not in ("refuse", "downgrade"):
            raise ConfigError(f"budgets.action: expected refuse or downgrade, got {self.action!r}")
        self.daily = int(Decimal(str(conf.get("daily_usd") or 0)) * NANOS)
        self.tasks = {str(t): int(Decimal(str(v)) * NANOS) for t, v in (conf.get("tasks") or {}).items()}
        store = str(conf.get("store", "auto"))
        if store not in ("auto", "database", "redis"):
            raise ConfigError(f"budgets.store: expected auto, database or redis, got {store!r}")
        if store == "redis" and not redis_url:
            raise ConfigError("budgets.store = \"redis\" needs resilience.redis_url")
        self.engine = engine
        self._redis: Any = None
        if redis_url and store in ("auto", "redis"):
            import redis.asyncio as aioredis  # lazy

            self._redis = aioredis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
            self._reserve = self._redis.register_script(_RESERVE)
            self._settle = self._redis.register_script(_SETTLE)
        elif engine is None and (self.daily or self.tasks):
            raise ConfigError("budgets: need a ledger database (ledger.url) or resilience.redis_url")
        self.prefix = "tierwise:budget:"
        self._detached: set[asyncio.Future[Any]] = set()  # writes and releases outliving a cancelled caller

    @property
    def store(self) -> str:
        return "redis" if self._redis is not None else "database"

    def scopes(self, key: "KeyRecord | None", task: str | None) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        if key is not None and key.budget_nanos is not None:
            out.append((f"key:{key.id}", key.budget_nanos))
        if task is not None and task in self.tasks:
            out.append((f"task:{task}", self.tasks[task]))
        if self.daily:
            out.append(("all", self.daily))
        return out

    # -- reserve / settle -------------------------------------------------------------
    async def reserve(self, scopes: list[tuple[str, int]], amount: int, day: str | None = None) -> Reservation:
        """Reserve ``amount`` in every scope at once; cancellation-safe (see the module's docstring)."""
        write = asyncio.ensure_future(self._write(scopes, amount, day or utc_day()))
        try:
            return await asyncio.shield(write)
        except asyncio.CancelledError:
            # the caller is gone but the write may land (or have landed): release what it reserved
            self._track(asyncio.ensure_future(self._release_when_written(write)))
            raise

    async def _release_when_written(self, write: "asyncio.Future[Reservation]") -> None:
        try:
            res = await write
        except Exception:  # noqa: BLE001 - refused or failed: nothing was reserved
            return
        try:
            await self.settle(res, 0)
        except Exception:  # noqa: BLE001
            log.exception("could not release the budget reservation of a cancelled request")

    def _track(self, task: "asyncio.Future[Any]") -> None:
        self._detached.add(task)
        task.add_done_callback(self._untrack)

    def _untrack(self, task: "asyncio.Future[Any]") -> None:
        self._detached.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a budget write for a cancelled request failed: %r", task.exception())

    async def drain(self) -> None:
        """Wait for the releases and settlements still running for cancelled callers."""
        while self._detached:
            await asyncio.gather(*list(self._detached), return_exceptions=True)

    async def _write(self, scopes: list[tuple[str, int]], amount: int, day: str) -> Reservation:
        if self._redis is not None:
            keys = [f"{self.prefix}{s}:{day}" for s, _ in scopes]
            idx, used = await self._reserve(keys=keys, args=[amount, *[lim for _, lim in scopes]])
            if int(idx):
                s, lim = scopes[int(idx) - 1]
                raise BudgetExceeded(s, lim, int(used), day)
            return Reservation(scopes, day, amount)
        return await asyncio.to_thread(self._reserve_db, scopes, amount, day)

    async def settle(self, res: Reservation, actual: int) -> None:
        """Replace the reservation by ``actual``; once started, it completes even if the caller is cancelled."""
        if res.settled:
            return
        res.settled = True
        write = asyncio.ensure_future(self._settle_write(res, actual))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            self._track(write)
            raise

    async def _settle_write(self, res: Reservation, actual: int) -> None:
        if self._redis is not None:
            await self._settle(keys=[f"{self.prefix}{s}:{res.day}" for s, _ in res.scopes], args=[res.amount, actual])
            return
        await asyncio.to_thread(self._settle_db, res, actual)

    def _insert_ignore(self, conn: sa.Connection, scope: str, day: str) -> None:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        conn.execute(insert(budget_spend).values(scope=scope, day=day, spent_nanos=0, reserved_nanos=0)
                     .on_conflict_do_nothing())

    def _reserve_db(self, scopes: list[tuple[str, int]], amount: int, day: str) -> Reservation:
        assert self.engine is not None
        t = budget_spend.c
        with self.engine.begin() as conn:
            for scope, limit in scopes:
                self._insert_ignore(conn, scope, day)
                n = conn.execute(budget_spend.update()
                                 .where(t.scope == scope, t.day == day, t.spent_nanos + t.reserved_nanos + amount <= limit)
                                 .values(reserved_nanos=t.reserved_nanos + amount)).rowcount
                if n != 1:
                    used = conn.execute(sa.select(t.spent_nanos + t.reserved_nanos)
                                        .where(t.scope == scope, t.day == day)).scalar() or 0
                    conn.rollback()
                    raise BudgetExceeded(scope, limit, int(used), day)
        return Reservation(scopes, day, amount)

    def _settle_db(self, res: Reservation, actual: int) -> None:
        assert self.engine is not None
        t = budget_spend.c
        with self.engine.begin() as conn:
            for scope, _ in res.scopes:
                conn.execute(budget_spend.update().where(t.scope == scope, t.day == res.day)
                             .values(reserved_nanos=t.reserved_nanos - res.amount, spent_nanos=t.spent_nanos + actual))

    async def spent(self, scope: str, day: str | None = None) -> tuple[int, int]:
        """(spent, reserved) nanos for ``scope`` on ``day``."""
        day = day or utc_day()
        if self._redis is not None:
            s, r = await self._redis.hmget(f"{self.prefix}{scope}:{day}", "spent", "reserved")
            return int(s or 0), int(r or 0)

        def q() -> tuple[int, int]:
            assert self.engine is not None
            t = budget_spend.c
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(t.spent_nanos, t.reserved_nanos).where(t.scope == scope, t.day == day)).first()
            return (int(row[0]), int(row[1])) if row else (0, 0)

        return await asyncio.to_thread(q)

    async def aclose(self) -> None:
        await self.drain()
        if self._redis is not None:
            await self._redis.aclose()
