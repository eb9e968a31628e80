"""Two proxy replicas sharing the budget store never take shadow spend past the daily cap."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import sqlalchemy as sa

from tests.conftest import make_settings
from tierwise.ledger.shadow_schema import shadow_pairs
from tierwise.server import create_app
from tierwise.shadow.runtime import Job

CAP_USD = 0.02


def _jobs(n: int, tag: str) -> list[Job]:
    out = []
    for i in range(n):
        body = {"model": "claude-sonnet-5-5", "max_tokens": 200,
                "messages": [{"role": "user", "content": f"Draft a polite email {tag} {i}"}]}
        out.append(Job(0.0, f"req_{tag}_{i}", "draft_email", "draft_email", None, "claude-sonnet-5-5", "balanced", "fast",
                       orjson.dumps(body), None))
    return out


def _two_replicas(tmp_path, **over):
    apps = []
    for _ in range(2):
        s = make_settings(tmp_path, upstream={"kind": "offline", "offline": {"latency_scale": 0.0, "quality": "sim"}},
                          shadow={"enabled": True, "sample": 1.0, "daily_usd": CAP_USD}, **over)
        apps.append(create_app(s))
    prefix = f"tierwise:test-{uuid.uuid4().hex[:8]}:"
    for a in apps:
        a.state.shadow.budgets.prefix = prefix
    return apps


def _run(apps) -> None:
    async def go() -> None:
        tasks = []
        for j, a in enumerate(apps):
            tasks += [a.state.shadow.run_job(job) for job in _jobs(40, f"r{j}")]
        await asyncio.gather(*tasks)
        for a in apps:
            await a.state.shadow.aclose()

    asyncio.run(go())


def _check(apps) -> None:
    engine = apps[0].state.ledger.engine
    with engine.connect() as conn:
        costs = [int(c) for c in conn.execute(sa.select(shadow_pairs.c.shadow_cost_nanos + shadow_pairs.c.replay_cost_nanos
                                                        + shadow_pairs.c.judge_cost_nanos)).scalars()]
    total = sum(costs)
    cap = int(CAP_USD * 1e9)
    assert costs, "no shadow job got through"
    assert total <= cap + max(costs), f"shadow spend {total} exceeds the cap {cap} by more than one call"
    dropped = [a.state.shadow.counts["dropped_budget"] for a in apps]
    assert sum(dropped) > 0 and len(costs) + sum(dropped) == 80
    for a in apps:
        a.state.ledger.close()


def test_two_replicas_sharing_postgresql(tmp_path, pg_url):
    apps = _two_replicas(tmp_path, ledger={"url": pg_url})
    _run(apps)
    _check(apps)


def test_two_replicas_sharing_redis(tmp_path, redis_url):
    apps = _two_replicas(tmp_path, resilience={"redis_url": redis_url})
    _run(apps)
    _check(apps)
