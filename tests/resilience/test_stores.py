"""A shared store that is down degrades the proxy, never fails it: Redis refused, Redis cut mid-run
(a gate in front of the shared server), the budget database refusing; rate limits and the breaker fall
back to in-process state, budgets fail closed (529) or open as configured, missed settlements are
replayed, and no store condition is a 500."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid

import httpx2
import pytest

from tierwise.admission.budgets import BudgetExceeded, Budgets, BudgetStoreUnavailable
from tierwise.admission.limits import RateLimiter
from tierwise.config import DEFAULTS
from tierwise.resilience.breaker import RedisBreaker
from tierwise.resilience.stores import COLD_SILENCE, WARM, StoreGuard, StoreUnavailable, redis_client

from ..conftest import free_port
from ..tcp_gate import TcpGate


def _dead_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/15"  # nothing listens there: connection refused


def _client(url: str):
    return redis_client(url, DEFAULTS["resilience"]["redis"])


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_the_circuit_leaves_a_failed_store_alone_then_probes_once():
    clock = Clock()
    g = StoreGuard("redis", retry_interval=1.0, clock=clock)
    calls = []

    async def boom():
        calls.append(1)
        raise ConnectionError("refused")

    with pytest.raises(StoreUnavailable):
        await g.run(boom)
    for _ in range(50):  # while the circuit is open nothing reaches the store
        with pytest.raises(StoreUnavailable):
            await g.run(boom)
    assert len(calls) == 1 and not g.available
    clock.t += 1.5

    async def fine():
        calls.append(2)
        return 7

    assert await g.run(fine) == 7 and g.available and calls == [1, 2]


async def test_rate_limits_fall_back_to_the_process_when_redis_is_unreachable():
    url = _dead_redis()
    lim = RateLimiter(url, client=_client(url), guard=StoreGuard("redis"))
    for _ in range(3):
        await lim.check("k1", 3)
    with pytest.raises(Exception) as exc:
        await lim.check("k1", 3)
    assert exc.value.status == 429  # still limited, by the in-process bucket
    assert lim.guard.fallbacks["rate_limits"] == 4 and lim.guard.failures == 1  # one connect attempt only
    closed = RateLimiter(url, client=_client(url), guard=StoreGuard("redis"), on_store_error="fail_closed")
    with pytest.raises(Exception) as exc:
        await closed.check("k1", 3)
    assert exc.value.status == 529 and exc.value.error_type == "overloaded_error"


async def test_the_breaker_still_opens_while_redis_is_down():
    url = _dead_redis()
    b = RedisBreaker(url, client=_client(url), guard=StoreGuard("redis"), window=10, min_requests=4,
                     failure_rate=0.5, cooldown=30, half_open_probes=1)
    key = ("anthropic", "claude-haiku-5-5")
    await b.record_async(key, False)  # the first write finds Redis down
    assert not b.guard.available
    for _ in range(5):
        b.record(key, False)
    assert b.state(key) == "open" and not b.allow(key)
    assert b.guard.fallbacks["breaker"] >= 5
    await b.aclose()


async def test_budgets_fail_closed_with_a_529_and_fail_open_counting_in_process():
    url = _dead_redis()
    closed = Budgets({"action": "refuse"}, engine=None, redis_url=url, client=_client(url), guard=StoreGuard("redis"))
    with pytest.raises(BudgetStoreUnavailable) as exc:
        await closed.reserve([("all", 10_000)], 1_000)
    assert exc.value.status == 529 and exc.value.headers["retry-after"] == "1" and "budget store" in exc.value.message
    opened = Budgets({"action": "refuse", "on_store_error": "fail_open"}, engine=None, redis_url=url,
                     client=_client(url), guard=StoreGuard("redis"))
    got = [await opened.reserve([("all", 10_000)], 3_000) for _ in range(3)]
    with pytest.raises(BudgetExceeded):  # the limit still holds, counted by this process
        await opened.reserve([("all", 10_000)], 3_000)
    await opened.settle(got[0], 100)
    assert opened._owed == {("all", got[0].day): 100}


async def test_a_redis_cut_mid_run_loses_no_settlement(redis_url):
    host, port = redis_url.split("//")[1].split("/")[0].split(":")
    with TcpGate(host, int(port)) as gate:
        url = f"redis://127.0.0.1:{gate.port}/15"
        clock = Clock()
        guard = StoreGuard("redis", retry_interval=1.0, clock=clock)
        b = Budgets({"action": "refuse", "on_store_error": "fail_open"}, engine=None, redis_url=url, client=_client(url),
                    guard=guard)
        scope = f"key:cut_{uuid.uuid4().hex[:8]}"
        res = await b.reserve([(scope, 1_000_000)], 5_000)  # in Redis
        gate.shut()
        await b.settle(res, 1_200)  # the store is gone: kept for later
        local = await b.reserve([(scope, 1_000_000)], 5_000)  # fail_open: counted in-process
        await b.settle(local, 800)
        assert b._unsettled and b._owed and not guard.available
        gate.open()
        clock.t += 2
        await b.reserve([(scope, 1_000_000)], 1)  # the probe succeeds: replay runs as a task
        for _ in range(100):
            if not b._unsettled and not b._owed:
                break
            await asyncio.sleep(0.02)
        spent, reserved = await b.spent(scope)
        assert (spent, reserved) == (2_000, 1)
        await b.aclose()


def test_proxy_with_redis_unreachable_answers_everything(fake_anthropic, proxy_factory, monkeypatch):
    """Keys with a rate limit and a budget, breaker and budgets on an unreachable Redis, budgets fail_open:
    every call answered 200, none 500, and /healthz says degraded."""
    monkeypatch.setenv("TW_TEST_UPSTREAM_KEY", "sk-upstream")
    proxy = proxy_factory(fake_anthropic.url, upstream={"api_key_env": "TW_TEST_UPSTREAM_KEY"},
                          resilience={"redis_url": _dead_redis()},
                          budgets={"on_store_error": "fail_open", "daily_usd": 5.0})
    _, key = proxy.state.guard.keys.create("k", rpm=10_000, budget_usd=1.0)
    body = {"model": "claude-haiku-5-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}

    def post(_):
        return httpx2.post(proxy.url + "/v1/messages", json=body, timeout=10,
                           headers={"x-api-key": key, "anthropic-version": "2023-06-01"})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = [r.status_code for r in pool.map(post, range(40))]
    assert codes == [200] * 40
    h = httpx2.get(proxy.url + "/healthz", timeout=5).json()
    assert h["status"] == "degraded"
    g = proxy.state.guard.redis_guard
    assert g.fallbacks["budgets"] == 40 and g.fallbacks["rate_limits"] == 40 and not g.available


async def test_with_a_probe_no_request_waits_on_a_down_store():
    clock = Clock()
    up = {"v": False}

    async def ping():
        if not up["v"]:
            raise ConnectionError("refused")

    g = StoreGuard("redis", retry_interval=1.0, clock=clock, probe=ping)
    g.failed(ConnectionError("refused"))
    clock.t += 2
    assert not g.usable()  # the probe runs in the background; this request falls back at once
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not g.available
    up["v"] = True
    clock.t += 2
    assert not g.usable()
    for _ in range(5):
        await asyncio.sleep(0)
    assert g.available and g.usable()


async def test_an_exhausted_pool_is_not_an_outage():
    import redis.exceptions as rex

    g = StoreGuard("redis")

    async def busy():
        raise rex.ConnectionError("No connection available.")

    with pytest.raises(StoreUnavailable):
        await g.run(busy)
    assert g.available and g.busy == 1 and g.failures == 0


async def test_one_timeout_is_not_an_outage_three_in_a_row_are():
    g = StoreGuard("redis")

    async def slow():
        raise TimeoutError()

    async def fine():
        return 1

    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            await g.run(slow)
    assert g.available
    await g.run(fine)  # a success resets the count
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            await g.run(slow)
    assert g.available
    with pytest.raises(StoreUnavailable):
        await g.run(slow)
    assert not g.available


def _warm(g: StoreGuard) -> None:
    """The store has answered enough calls for silence to be judged (its pace: 1 ms)."""
    for _ in range(30):
        g._note_answer(g.clock(), 0.001)


async def test_a_store_that_stops_answering_fails_every_waiting_call_at_once():
    g = StoreGuard("redis", silence=0.05)
    _warm(g)
    hang = asyncio.Event()

    async def hung():
        await hang.wait()  # never set: a store that accepts and never answers

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    results = await asyncio.gather(*[g.run(hung) for _ in range(10)], return_exceptions=True)
    took = loop.time() - t0
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert not g.available and g.tripped == 1 and g.failed_together == 9  # one noticed, nine failed with it
    assert g.error == "StoreSilent"
    assert took < 1.0  # not the client's own 1 s timeout (a loose bound: the trip is at about 0.05 s)


async def test_a_slow_store_that_answers_others_is_not_down():
    g = StoreGuard("redis", silence=0.05)
    _warm(g)

    async def slow():
        await asyncio.sleep(0.2)  # four silence windows
        return "late"

    async def quick():
        await asyncio.sleep(0.01)
        return "ok"

    async def chatter():
        for _ in range(25):  # the store keeps answering other calls meanwhile
            await g.run(quick)

    got, _ = await asyncio.gather(g.run(slow), chatter())
    assert got == "late" and g.available and g.tripped == 0


async def test_silence_means_nothing_before_the_store_was_seen_answering():
    g = StoreGuard("redis", silence=0.05)

    async def slow_first():
        await asyncio.sleep(0.15)
        return 1

    assert await g.run(slow_first) == 1 and g.available and g.tripped == 0


def test_before_warm_answers_the_silence_window_is_the_cold_one():
    g = StoreGuard("redis", silence=0.05)
    assert g.cold == COLD_SILENCE > g.silence
    assert g.silence_limit(g.clock()) == COLD_SILENCE  # pace unknown: the fixed, conservative window
    for _ in range(WARM - 1):
        g._note_answer(g.clock(), 0.001)
    assert g.silence_limit(g.clock()) == COLD_SILENCE
    g._note_answer(g.clock(), 0.001)
    assert g.silence_limit(g.clock()) == 0.05  # warm: the store's own pace (here under ``silence``)


async def test_a_store_silent_from_the_start_fails_its_waiters_within_the_cold_window():
    g = StoreGuard("redis", silence=0.05, cold=0.1)  # never seen answering
    hang = asyncio.Event()

    async def hung():
        await hang.wait()  # never set, and no timeout of its own: only the cold window can end these calls

    calls = asyncio.gather(*[g.run(hung) for _ in range(10)], return_exceptions=True)
    results = await asyncio.wait_for(calls, 30)  # a safety net only: without the cold window they would hang
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert not g.available and g.tripped == 1 and g.failed_together == 9  # one noticed, nine failed with it
    assert g.error == "StoreSilent" and g._seen == 0


async def test_a_slow_but_steady_store_from_the_start_raises_no_alarm():
    g = StoreGuard("redis", silence=0.05, cold=0.1)  # cold: slower than ``silence`` is not judged by it

    async def steady():
        await asyncio.sleep(0.06)  # over the warm window, under the cold one
        return "ok"

    async def slowest():
        await asyncio.sleep(0.15)  # one and a half cold windows, while the store answers others
        return "late"

    async def stream(n: int):
        return [await g.run(steady) for _ in range(n)]

    got = await asyncio.gather(g.run(slowest), *[stream(4) for _ in range(5)])
    assert got[0] == "late" and all(r == ["ok"] * 4 for r in got[1:])
    assert g.available and g.tripped == 0

    g2 = StoreGuard("redis", silence=0.05, cold=0.1)
    assert await g2.run(slowest) == "late"  # a lone call: one silent cold window, not two
    assert g2.available and g2.tripped == 0


async def test_a_failure_while_connecting_is_retried_once_when_the_store_answers_others():
    import redis.exceptions as rex

    g = StoreGuard("redis", silence=0.05)
    _warm(g)
    g._answered_at = g.clock() + 1.0  # answers keep arriving (as under load, from other calls)
    tries = []

    async def connect_then_ok():
        tries.append(1)
        if len(tries) == 1:
            raise rex.TimeoutError("Timeout connecting to server")
        return "ok"

    assert await g.run(connect_then_ok) == "ok" and tries == [1, 1] and g.reconnects == 1 and g.available

    async def never():
        raise rex.TimeoutError("Timeout connecting to server")

    g._answered_at = g.clock() + 1.0
    with pytest.raises(StoreUnavailable):
        await g.run(never)  # once more only, then it is a failure
    assert g.reconnects == 2


async def test_with_no_traffic_a_down_store_is_still_probed_and_the_circuit_closes():
    up = {"v": False}
    back = []

    async def ping():
        if not up["v"]:
            raise ConnectionError("refused")

    g = StoreGuard("redis", retry_interval=0.05, probe=ping)
    g.on_back(lambda: back.append(1))
    g.failed(ConnectionError("refused"))
    await asyncio.sleep(0.2)  # probed on a timer, failing: still down
    assert not g.available
    up["v"] = True
    for _ in range(100):
        if g.available:
            break
        await asyncio.sleep(0.02)
    assert g.available and back == [1]  # no request asked: the timer's probe closed it and ran the hooks


async def test_a_timeout_while_the_store_answers_others_is_slow_not_a_failure():
    import redis.exceptions as rex

    g = StoreGuard("redis", silence=0.05)
    _warm(g)

    async def slow():
        g._answered_at = g.clock() + 1.0  # others were answered meanwhile
        raise rex.TimeoutError("Timeout reading from socket")

    for _ in range(5):
        with pytest.raises(StoreUnavailable):
            await g.run(slow)
    assert g.available and g.slow == 5 and g.failures == 0
