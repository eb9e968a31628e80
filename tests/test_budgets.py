"""Budgets: atomic reservations under concurrency, in SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tierwise.budgets import BudgetExceeded, Budgets, estimate_nanos
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
