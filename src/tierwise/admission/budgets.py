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

**What the estimate bounds** (``estimate_request``). Output: all of ``max_tokens``. Prompt: one
token per 3 body bytes (base64 images and PDFs sent inline are far below that; ordinary text is about
4 bytes a token, so the bound holds unless the text tokenizes at more than a token per 3 bytes),
priced at the highest of the input and cache-write rates when the body asks for caching, at the
long-context rates when the bound passes the model's threshold. Content tierwise cannot size
(a document or image by ``file_id`` or by URL, a container upload, MCP servers) makes the prompt
bound the model's whole context window. Server tools (web search, web fetch, code execution, tool
search) loop server-side: each use can re-read the prompt and add output, so the bound is counted
once per use plus one, with ``max_uses`` from the tool or ``budgets.server_tool_uses`` (10) when the
tool sets none. A request whose bound does not fit is refused, naming why its bound is that high.
**Not bounded**: text that tokenizes at more than a token per 3 bytes, a server-side loop that
uses a tool more often than its ``max_uses`` (or more than ``server_tool_uses`` without one), and
fees tierwise does not price (per-search charges). The overshoot past a limit is then at most the
amount by which the in-flight requests' real costs beat their estimates.

**When the store is down** (Redis, or the database; see ``tierwise.resilience.stores``):
``budgets.on_store_error = "fail_closed"`` (the default) refuses budgeted requests with 529
``overloaded_error`` and ``retry-after: 1`` (never a 500); ``"fail_open"`` admits them against an
in-process count of what this process reserved and spent meanwhile (each replica keeps each limit on
its own during the outage) and adds that spend to the store when it is back. A settlement the store
does not take is kept and written when it is back, so no reservation is held until the day ends.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Mapping

import sqlalchemy as sa

from ..errors import ConfigError, OverloadedError, RateLimitError
from ..ledger.keys_schema import budget_spend

if TYPE_CHECKING:
    from ..catalog import Model
    from .keys import KeyRecord

__all__ = ["Budgets", "BudgetExceeded", "BudgetStoreUnavailable", "Reservation", "Estimate", "estimate_nanos",
           "estimate_request", "utc_day"]

NANOS = 1_000_000_000

log = logging.getLogger("tierwise.budgets")


def utc_day(now: _dt.datetime | None = None) -> str:
    return (now or _dt.datetime.now(_dt.UTC)).strftime("%Y-%m-%d")


def _next_reset(day: str) -> _dt.datetime:
    d = _dt.date.fromisoformat(day) + _dt.timedelta(days=1)
    return _dt.datetime(d.year, d.month, d.day, tzinfo=_dt.UTC)


def estimate_nanos(model: "Model", body_bytes: int, max_tokens: int) -> int:
    """An upper bound of a call's cost: every body byte a third of a token, all of max_tokens output."""
    prompt = body_bytes // 3 + 16
    rates = model.price_at().rates_for(prompt)
    return int((prompt * rates.input + max_tokens * rates.output) * 1000)


_SERVER_TOOLS = ("web_search", "web_fetch", "code_execution", "tool_search")  # run by the API, in a loop
_UNSIZED_SOURCES = ("url", "file")  # the API fetches or reads these: the body does not hold their content


@dataclass(slots=True)
class Estimate:
    nanos: int
    why: list[str]   # what made the bound larger than the body's size (for the refusal's message)


def _scan(node: Any, found: dict[str, Any], depth: int = 0) -> None:
    if depth > 64:
        return
    if isinstance(node, dict):
        t = node.get("type")
        if t in ("document", "image", "container_upload"):
            src = node.get("source")
            if t == "container_upload" or (isinstance(src, dict) and src.get("type") in _UNSIZED_SOURCES):
                kind = src.get("type") if isinstance(src, dict) else "file_id"
                found["unsized"].add(f"{'an' if t == 'image' else 'a'} {t.replace('_', ' ')} by {'file_id' if kind == 'file' else kind}")
        cc = node.get("cache_control")
        if isinstance(cc, dict):
            found["cache"] = max(found["cache"], 2 if cc.get("ttl") == "1h" else 1)
        for v in node.values():
            if isinstance(v, (dict, list)):
                _scan(v, found, depth + 1)
    elif isinstance(node, list):
        for v in node:
            if isinstance(v, (dict, list)):
                _scan(v, found, depth + 1)


def estimate_request(model: "Model", body: Mapping[str, Any], body_bytes: int, max_tokens: int, *,
                     server_tool_uses: int = 10) -> Estimate:
    """An upper bound of a call's cost from what the body says and references (see the module's docstring)."""
    found: dict[str, Any] = {"unsized": set(), "cache": 0}
    _scan(body.get("messages"), found)
    _scan(body.get("system"), found)
    _scan(body.get("tools"), found)
    if isinstance(body.get("cache_control"), dict):
        found["cache"] = max(found["cache"], 2 if body["cache_control"].get("ttl") == "1h" else 1)
    why: list[str] = sorted(found["unsized"])
    if body.get("mcp_servers"):
        why.append("MCP servers (their tool results are added server-side)")
    uses = 0
    for tool in body.get("tools") or ():
        if isinstance(tool, dict) and isinstance(tool.get("type"), str) and tool["type"].startswith(_SERVER_TOOLS):
            n = tool.get("max_uses")
            n = int(n) if isinstance(n, int) and not isinstance(n, bool) and n > 0 else server_tool_uses
            uses += n
            why.append(f"server tool {tool['type']} ({n} uses{'' if tool.get('max_uses') else ' assumed: no max_uses'})")
    prompt = body_bytes // 3 + 16
    if found["unsized"] or body.get("mcp_servers") or uses:
        prompt = max(prompt, model.context_window)  # content the API adds: the bound is the whole window
    price = model.price_at()
    rates = price.rates_for(prompt)
    in_rate = rates.input
    if found["cache"]:
        in_rate = max(in_rate, rates.cache_write_1h if found["cache"] == 2 else rates.cache_write_5m)
    rounds = 1 + uses
    nanos = int((prompt * in_rate + max_tokens * rates.output) * rounds * 1000)
    return Estimate(nanos, why)


@dataclass(slots=True)
class Reservation:
    scopes: list[tuple[str, int]]      # (scope, limit nanos)
    day: str
    amount: int
    settled: bool = False
    local: bool = False   # made in-process while the store was down (fail_open)


class BudgetExceeded(RateLimitError):
    def __init__(self, scope: str, limit: int, spent: int, day: str, why: str = "") -> None:
        reset = _next_reset(day)
        label = {"all": "the overall daily budget"}.get(scope) or (
            f"the daily budget of proxy key {scope[4:]}" if scope.startswith("key:") else f"the daily budget of task type {scope[5:]!r}")
        secs = max(1, int((reset - _dt.datetime.now(_dt.UTC)).total_seconds()))
        super().__init__(f"budget exceeded: this request would take {label} (${Decimal(limit) / NANOS:.2f} per UTC day; "
                         f"${Decimal(spent) / NANOS:.4f} spent or reserved) over its limit; it resets at "
                         f"{reset.strftime('%Y-%m-%dT%H:%M:%SZ')}{why}",
                         headers={"x-should-retry": "false", "retry-after": str(secs)})
        self.scope = scope
        self.reset = reset


class BudgetStoreUnavailable(OverloadedError):
    def __init__(self, store: str, reason: str) -> None:
        super().__init__(f"budget store unavailable: the {store} that keeps the daily budgets cannot be reached ({reason}), "
                         "so this budgeted request cannot be admitted now; try again shortly",
                         headers={"retry-after": "1", "x-should-retry": "true"})


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
    def __init__(self, conf: Mapping[str, Any], *, engine: sa.Engine | None, redis_url: str = "", client: Any = None,
                 guard: Any = None, db_guard: Any = None) -> None:
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
        self.on_store_error = str(conf.get("on_store_error", "fail_closed"))
        if self.on_store_error not in ("fail_open", "fail_closed"):
            raise ConfigError(f"budgets.on_store_error: expected fail_open or fail_closed, got {self.on_store_error!r}")
        self.server_tool_uses = int(conf.get("server_tool_uses", 10))
        from ..resilience.stores import StoreGuard

        self.engine = engine
        self._redis: Any = None
        self._own_redis = False
        if redis_url and store in ("auto", "redis"):
            if client is None:
                from ..config import DEFAULTS
                from ..resilience.stores import redis_client

                client = redis_client(redis_url, DEFAULTS["resilience"]["redis"])
                self._own_redis = True
            self._redis = client
            self._reserve = self._redis.register_script(_RESERVE)
            self._settle = self._redis.register_script(_SETTLE)
            self.guard = guard if guard is not None else StoreGuard("redis")
        else:
            if engine is None and (self.daily or self.tasks):
                raise ConfigError("budgets: need a ledger database (ledger.url) or resilience.redis_url")
            self.guard = db_guard if db_guard is not None else StoreGuard("ledger database (budgets)")
        self.guard.on_back(self.replay)
        self.prefix = "tierwise:budget:"
        self._detached: set[asyncio.Future[Any]] = set()  # writes and releases outliving a cancelled caller
        self._local: dict[tuple[str, str], list[int]] = {}   # (scope, day) -> [spent, reserved] while the store was down
        self._owed: dict[tuple[str, str], int] = {}          # (scope, day) -> spend to add to the store when it is back
        self._unsettled: list[tuple[Reservation, int]] = []  # settlements the store did not take

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
        write = asyncio.ensure_future(self._guarded_write(scopes, amount, day or utc_day()))
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
        except Exception:
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

    async def _guarded_write(self, scopes: list[tuple[str, int]], amount: int, day: str) -> Reservation:
        from ..resilience.stores import StoreUnavailable

        try:
            return await self.guard.run(lambda: self._write(scopes, amount, day))
        except StoreUnavailable as exc:
            self.guard.fell_back("budgets")
            if self.on_store_error == "fail_closed":
                raise BudgetStoreUnavailable(self.store, exc.reason) from None
            return self._reserve_local(scopes, amount, day)

    def _reserve_local(self, scopes: list[tuple[str, int]], amount: int, day: str) -> Reservation:
        """fail_open: this process's own count against each limit while the store is down."""
        for scope, limit in scopes:
            spent, reserved = self._local.get((scope, day), (0, 0))
            if spent + reserved + amount > limit:
                raise BudgetExceeded(scope, limit, spent + reserved, day,
                                     " (counted by this replica alone: the budget store is unavailable)")
        for scope, _ in scopes:
            self._local.setdefault((scope, day), [0, 0])[1] += amount
        return Reservation(scopes, day, amount, local=True)

    def _settle_local(self, res: Reservation, actual: int) -> None:
        for scope, _ in res.scopes:
            entry = self._local.setdefault((scope, res.day), [0, 0])
            entry[1] -= res.amount
            entry[0] += actual
            if actual:
                self._owed[(scope, res.day)] = self._owed.get((scope, res.day), 0) + actual

    async def replay(self) -> None:
        """The store is back: write the settlements it missed and the spend counted in-process meanwhile."""
        from ..resilience.stores import StoreUnavailable

        pending, self._unsettled = self._unsettled, []
        for i, (res, actual) in enumerate(pending):
            try:
                await self.guard.run(lambda res=res, actual=actual: self._settle_store(res, actual))
            except StoreUnavailable:
                self._unsettled.extend(pending[i:])
                return
        owed, self._owed = self._owed, {}
        items = list(owed.items())
        for i, ((scope, day), n) in enumerate(items):
            try:
                await self.guard.run(lambda scope=scope, day=day, n=n: self._add_spend(scope, day, n))
            except StoreUnavailable:
                for k, v in items[i:]:
                    self._owed[k] = self._owed.get(k, 0) + v
                return
            entry = self._local.get((scope, day))
            if entry is not None:
                entry[0] -= n
                if entry == [0, 0]:
                    del self._local[(scope, day)]
        if pending or items:
            log.warning("budget store back: wrote %d missed settlements and the spend of %d scopes counted meanwhile",
                        len(pending), len(items))

    async def _add_spend(self, scope: str, day: str, n: int) -> None:
        if self._redis is not None:
            rk = f"{self.prefix}{scope}:{day}"
            pipe = self._redis.pipeline()
            pipe.hincrby(rk, "spent", n)
            pipe.expire(rk, 259200)
            await pipe.execute()
            return

        def add() -> None:
            assert self.engine is not None
            t = budget_spend.c
            with self.engine.begin() as conn:
                self._insert_ignore(conn, scope, day)
                conn.execute(budget_spend.update().where(t.scope == scope, t.day == day)
                             .values(spent_nanos=t.spent_nanos + n))

        await asyncio.to_thread(add)

    def status(self) -> dict[str, Any]:
        return {"store": self.store, "on_store_error": self.on_store_error, **self.guard.status(),
                "unsettled": len(self._unsettled), "owed_scopes": len(self._owed)}

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
        from ..resilience.stores import StoreUnavailable

        if res.local:
            self._settle_local(res, actual)
            return
        try:
            await self.guard.run(lambda res=res, actual=actual: self._settle_store(res, actual))
        except StoreUnavailable:
            self.guard.fell_back("budget_settlements")
            self._unsettled.append((res, actual))  # written by replay() once the store is back

    async def _settle_store(self, res: Reservation, actual: int) -> None:
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
        if self._unsettled or self._owed:
            await self.replay()
        if self._unsettled or self._owed:
            log.error("budgets: closing with %d settlements and %d scopes' spend the store did not take",
                      len(self._unsettled), len(self._owed))
        if self._redis is not None and self._own_redis:
            await self._redis.aclose()
