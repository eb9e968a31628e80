"""The prompt-cache simulator follows the documented rules; the price of a switch uses the catalog."""

from __future__ import annotations

from tierwise.cachesim import Block, CacheSim, blocks_of, switch_reckoning
from tierwise.config import load_settings

S = "claude-sonnet-5-5"
H = "claude-haiku-5-5"


def body(turns: int, *, ttl: str | None = None, system_chars: int = 8000) -> dict:
    cc = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    msgs = []
    for i in range(turns):
        msgs.append({"role": "user", "content": [{"type": "text", "text": f"turn {i} " + "w" * 2000}]})
        if i < turns - 1:
            msgs.append({"role": "assistant", "content": [{"type": "text", "text": "ok " * 100}]})
    last = dict(msgs[-1])
    last["content"] = [{**last["content"][-1], "cache_control": cc}]
    msgs[-1] = last
    return {"system": [{"type": "text", "text": "s" * system_chars, "cache_control": cc}], "messages": msgs}


def test_write_then_read_on_the_same_model_only():
    sim = CacheSim()
    first = sim.account(S, blocks_of(body(1)), now=0.0)
    assert first.cache_read_tokens == 0 and first.cache_write_5m_tokens > 2000 and first.input_tokens == 0
    # next turn: the breakpoint moved to the new last block; the earlier prefix is found by lookback
    second = sim.account(S, blocks_of(body(2)), now=10.0)
    assert second.cache_read_tokens == first.cache_write_5m_tokens
    assert second.cache_write_5m_tokens > 0
    # another model has its own cache: nothing to read
    other = sim.account(H, blocks_of(body(2)), now=11.0)
    assert other.cache_read_tokens == 0 and other.cache_write_5m_tokens > 0


def test_lifetimes_expire_and_reads_refresh():
    sim = CacheSim()
    sim.account(S, blocks_of(body(1)), now=0.0)
    assert sim.account(S, blocks_of(body(1)), now=290.0).cache_read_tokens > 0   # refreshed at 290
    assert sim.account(S, blocks_of(body(1)), now=580.0).cache_read_tokens > 0   # 290 s later: still live
    assert sim.account(S, blocks_of(body(1)), now=900.0).cache_read_tokens == 0  # > 5 min idle: gone
    sim2 = CacheSim()
    w = sim2.account(S, blocks_of(body(1, ttl="1h")), now=0.0)
    assert w.cache_write_1h_tokens > 0 and w.cache_write_5m_tokens == 0
    assert sim2.account(S, blocks_of(body(1, ttl="1h")), now=3000.0).cache_read_tokens > 0
    assert sim2.account(S, blocks_of(body(1, ttl="1h")), now=6000.0).cache_read_tokens > 0  # refreshed for 1 h
    assert sim2.account(S, blocks_of(body(1, ttl="1h")), now=9700.0).cache_read_tokens == 0


def test_minimum_cacheable_length():
    sim = CacheSim()
    small = body(1, system_chars=100)
    small["messages"][-1]["content"][-1]["text"] = "short"
    acc = sim.account(S, blocks_of(small), now=0.0)
    assert acc.cache_write_5m_tokens == 0 and acc.cache_read_tokens == 0 and acc.input_tokens > 0
    # 512 tokens is enough on a 5.5 model, not on an older one (1,024)
    blocks = [Block(b"x", 600, "5m")]
    assert CacheSim().account(S, blocks, 0.0).cache_write_5m_tokens == 600
    assert CacheSim().account("claude-sonnet-4-5", blocks, 0.0).cache_write_5m_tokens == 0


def test_no_breakpoint_no_cache():
    acc = CacheSim().account(S, [Block(b"a", 5000, None)], 0.0)
    assert (acc.input_tokens, acc.cache_read_tokens, acc.cache_write_5m_tokens) == (5000, 0, 0)


def test_bounded():
    sim = CacheSim(capacity=3)
    for i in range(10):
        sim.account(S, [Block(str(i).encode(), 600, "5m")], 0.0)
    assert len(sim) == 3


def test_switch_reckoning_prices_the_cache():
    cat = load_settings(None, environ={}).catalog
    sonnet, haiku, opus = cat.get(S), cat.get(H), cat.get("claude-opus-5-5")
    # 200k warm on Sonnet: moving to "cheaper" Haiku re-writes 200k at the long-context write price
    rk = switch_reckoning(sonnet, haiku, prefix_tokens=200_000, new_tokens=500, output_tokens=300)
    assert not rk.pays
    assert rk.switch_usd > 3 * rk.stay_usd
    assert "does not pay" in rk.text(S, H) and "200,000 cached tokens" in rk.text(S, H)
    # a small conversation: moving down pays on the first turn
    assert switch_reckoning(opus, haiku, prefix_tokens=2_000, new_tokens=200, output_tokens=800).pays
    # over a long horizon a move down amortises its re-write
    short = switch_reckoning(opus, sonnet, prefix_tokens=40_000, new_tokens=500, output_tokens=600, turns=1)
    long = switch_reckoning(opus, sonnet, prefix_tokens=40_000, new_tokens=500, output_tokens=600, turns=20,
                            growth_tokens=1000)
    assert not short.pays and long.pays
    # a margin makes a marginal move stay
    assert not switch_reckoning(opus, sonnet, prefix_tokens=40_000, new_tokens=500, output_tokens=600, turns=20,
                                growth_tokens=1000, margin=0.9).pays


def test_offline_upstream_reports_per_model_cache_accounting():
    import asyncio

    import orjson

    from tierwise.upstream.offline import OfflineUpstream

    up = OfflineUpstream(latency_scale=0.0)

    async def send(model: str, turns: int) -> dict:
        b = dict(body(turns), model=model, max_tokens=64)
        resp = await up.send("/v1/messages", orjson.dumps(b), headers={}, stream=False)
        return orjson.loads(resp.body)["usage"]

    async def go():
        a = await send(S, 1)
        b = await send(S, 2)
        c = await send(H, 2)
        return a, b, c

    a, b, c = asyncio.run(go())
    assert a["cache_creation_input_tokens"] > 0 and a["cache_read_input_tokens"] == 0
    assert b["cache_read_input_tokens"] > 0
    assert c["cache_read_input_tokens"] == 0 and c["cache_creation_input_tokens"] > 0
    for u in (a, b, c):
        assert min(u["input_tokens"], u["cache_read_input_tokens"], u["cache_creation_input_tokens"]) >= 0
