"""Circuit breaker: opens on a failure rate, half-open probes, closes on success; shared through Redis."""

from __future__ import annotations

import uuid

import pytest

from tierwise.resilience.breaker import CircuitBreaker, RedisBreaker, counts_as_failure

K = ("anthropic", "claude-haiku-5-5")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_opens_on_failure_rate_then_half_open_then_closes():
    clock = Clock()
    b = CircuitBreaker(window=10, min_requests=4, failure_rate=0.5, cooldown=5.0, clock=clock)
    for ok in (True, False, True):
        assert b.allow(K)
        b.record(K, ok)
    assert b.state(K) == "closed"  # 3 outcomes < min_requests
    b.record(K, False)             # 2/4 failed
    assert b.state(K) == "open" and not b.allow(K)
    assert b.retry_in(K) == pytest.approx(5.0)
    clock.t += 5.0
    assert b.state(K) == "half_open"
    assert b.allow(K)              # the one probe
    assert not b.allow(K)          # no second probe while the first is out
    b.record(K, False)             # probe failed: open again
    assert b.state(K) == "open"
    clock.t += 5.0
    assert b.allow(K)
    b.record(K, True)
    assert b.state(K) == "closed" and b.allow(K)


def test_window_forgets_old_failures():
    b = CircuitBreaker(window=4, min_requests=4, failure_rate=0.75, cooldown=5.0, clock=Clock())
    for ok in (False, False, True, True, True, True):
        b.record(K, ok)
    assert b.state(K) == "closed"


def test_release_frees_a_probe():
    clock = Clock()
    b = CircuitBreaker(window=2, min_requests=1, failure_rate=1.0, cooldown=1.0, clock=clock)
    b.record(K, False)
    clock.t += 1
    assert b.allow(K) and not b.allow(K)
    b.release(K)
    assert b.allow(K)


def test_what_counts_as_failure():
    assert counts_as_failure(None) and counts_as_failure(500) and counts_as_failure(529) and counts_as_failure(504)
    assert not counts_as_failure(429) and not counts_as_failure(400) and not counts_as_failure(401)


async def test_redis_shared_between_replicas(redis_url):
    REDIS_URL = redis_url
    prefix = f"tierwise:test:{uuid.uuid4().hex}:"
    kw = {"window": 10, "min_requests": 3, "failure_rate": 0.5, "cooldown": 30.0, "prefix": prefix}
    a, b = RedisBreaker(REDIS_URL, **kw), RedisBreaker(REDIS_URL, **kw)
    try:
        for _ in range(3):
            await a.record_async(K, False)
        assert a.state(K) == "open" and not a.allow(K)
        assert b.allow(K)          # b has not looked yet
        await b.sync()
        assert b.state(K) == "open" and not b.allow(K)  # replica b sees the circuit a opened
        # a success recorded by b after the cooldown closes it for both
        a.clock = b.clock = lambda: __import__("time").time() + 31
        assert b.allow(K)          # half-open probe
        assert await b.record_async(K, True) == "closed"
        await a.sync()
        assert a.state(K) == "closed"
    finally:
        await a._redis.delete(*[k async for k in a._redis.scan_iter(match=prefix + "*")] or ["none"])
        await a.aclose()
        await b.aclose()
