"""Budgets: atomic reservations under concurrency, in SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tierwise.admission.budgets import BudgetExceeded, Budgets, estimate_nanos
from tierwise.config import load_settings
from tierwise.ledger import make_engine
from tierwise.ledger.schema import migrate

CATALOG = load_settings(None, environ={}).catalog

def test_estimate_is_an_upper_bound():
    haiku = CATALOG.get("claude-haiku-5-5")
    # 300 body bytes -> 116 prompt tokens at $0.10/M, 100 output tokens at $0.50/M
    assert estimate_nanos(haiku, 300, 100) == 116 * 100 + 100 * 500


def test_message_names_the_budget_and_reset():
    exc = BudgetExceeded("key:key_ab", 5_000_000_000, 4_990_000_000, "2026-11-21")
    assert "proxy key key_ab" in exc.message and "$5.00" in exc.message and "2026-11-22T00:00:00Z" in exc.message
    assert exc.status == 429 and exc.headers["x-should-retry"] == "false"


async def _hammer(b: Budgets, scope: str, limit: int, amount: int, n: int = 40) -> tuple[int, int]:
    scopes = [(scope, limit)]

    async def one() -> bool:
        try:
            res = await b.reserve(scopes, amount)
        except BudgetExceeded:
            return False
        await asyncio.sleep(0)
        await b.settle(res, amount)
        return True

    ok = sum(await asyncio.gather(*[one() for _ in range(n)]))
    spent, reserved = await b.spent(scope)
    return ok, spent + reserved


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def budgets(request, tmp_path):
    """The same budget store on each backend; PostgreSQL and Redis come from tests/conftest.py
    (they fail in CI when the service is down, and skip with a reason elsewhere)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
        migrate(engine)
        yield Budgets({"action": "refuse"}, engine=engine)
        engine.dispose()
    elif request.param == "postgresql":
        engine = make_engine(request.getfixturevalue("pg_url"))
        migrate(engine)
        yield Budgets({"action": "refuse"}, engine=engine)
        engine.dispose()
    else:
        yield Budgets({"action": "refuse"}, engine=None, redis_url=request.getfixturevalue("redis_url"))


async def test_concurrent_reservations_never_pass_the_limit(budgets):
    scope = f"key:test_{uuid.uuid4().hex[:8]}"
    ok, used = await _hammer(budgets, scope, limit=10_000, amount=1_000, n=40)
    assert ok == 10 and used == 10_000
    await budgets.aclose()


async def test_failed_reservation_reserves_nothing_anywhere(budgets):
    a, b = f"task:a{uuid.uuid4().hex[:8]}", f"all{uuid.uuid4().hex[:8]}"
    await budgets.reserve([(a, 100)], 90)
    with pytest.raises(BudgetExceeded) as exc:
        await budgets.reserve([(b, 1000), (a, 100)], 20)
    assert exc.value.scope == a
    assert await budgets.spent(b) == (0, 0)
    await budgets.aclose()


def _pause_after_write(b: Budgets) -> tuple[asyncio.Event, asyncio.Event]:
    """Make ``b``'s reservation write land, then hold its answer until ``go`` is set: the round trip in flight."""
    landed, go = asyncio.Event(), asyncio.Event()
    if b.store == "redis":
        script = b._reserve

        async def paused_script(**kw):
            out = await script(**kw)
            landed.set()
            await go.wait()
            return out

        b._reserve = paused_script
    else:
        import threading

        loop = asyncio.get_running_loop()
        go_thread = threading.Event()
        write = b._reserve_db

        def paused_db(*args):
            out = write(*args)  # committed
            loop.call_soon_threadsafe(landed.set)
            go_thread.wait()
            return out

        b._reserve_db = paused_db
        asyncio.ensure_future(go.wait()).add_done_callback(lambda _: go_thread.set())
    return landed, go


async def test_reservation_cancelled_mid_write_is_released(budgets):
    """A request cancelled while its reservation is being written: the reservation lands, then is released."""
    scope = f"key:cancel_{uuid.uuid4().hex[:8]}"
    landed, go = _pause_after_write(budgets)
    task = asyncio.ensure_future(budgets.reserve([(scope, 10_000)], 4_000))
    await landed.wait()
    assert await budgets.spent(scope) == (0, 4_000)  # the write is in; its answer is not back yet
    task.cancel()
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await budgets.drain()
    assert await budgets.spent(scope) == (0, 0)
    # and the budget is whole again for the next request
    res = await budgets.reserve([(scope, 10_000)], 10_000)
    await budgets.settle(res, 0)
    await budgets.aclose()


async def test_settle_cancelled_mid_write_still_completes(budgets):
    scope = f"key:settle_{uuid.uuid4().hex[:8]}"
    res = await budgets.reserve([(scope, 10_000)], 4_000)
    go = asyncio.Event()
    if budgets.store == "redis":
        script = budgets._settle

        async def paused(**kw):
            await go.wait()
            return await script(**kw)

        budgets._settle = paused
    else:
        real = budgets._settle_write

        async def paused(*args):
            await go.wait()
            return await real(*args)

        budgets._settle_write = paused
    task = asyncio.ensure_future(budgets.settle(res, 1_500))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    go.set()
    await budgets.drain()
    assert await budgets.spent(scope) == (1_500, 0)
    await budgets.aclose()
