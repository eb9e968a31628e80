"""Thinking affinity: which model wrote a thinking block, remembered by its signature digest."""

from __future__ import annotations

import orjson
import pytest

from tierwise.affinity import ThinkingAffinity, response_thinking_keys, thinking_keys


def convo(*assistant_blocks: list[dict]) -> dict:
    msgs: list[dict] = [{"role": "user", "content": "weather in Paris?"}]
    for blocks in assistant_blocks:
        msgs.append({"role": "assistant", "content": blocks})
        msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "12C"}]})
    return {"model": "auto", "max_tokens": 100, "messages": msgs}


def thinking(sig: str) -> dict:
    return {"type": "thinking", "thinking": "let me check the tool", "signature": sig}


def test_keys_come_from_the_last_assistant_turn_only() -> None:
    body = convo([thinking("old")], [thinking("new"), {"type": "redacted_thinking", "data": "opaque"},
                                      {"type": "tool_use", "id": "t1", "name": "w", "input": {}}])
    assert thinking_keys(body) == ["new", "opaque"]
    assert thinking_keys({"messages": [{"role": "user", "content": "hi"}]}) == []
    assert thinking_keys({"messages": "nonsense"}) == [] and thinking_keys(None) == []


def test_response_keys_are_read_only_when_there_is_thinking() -> None:
    resp = {"id": "msg_1", "content": [thinking("sig-a"), {"type": "text", "text": "12C"}], "model": "m"}
    assert response_thinking_keys(orjson.dumps(resp)) == ["sig-a"]
    assert response_thinking_keys(b'{"content": [{"type": "text", "text": "hi"}]}') == []
    assert response_thinking_keys(b'{"signature" broken') == []


def test_remembered_model_is_found_and_conflicts_have_no_affinity() -> None:
    aff = ThinkingAffinity()
    aff.remember(["sig-a"], "claude-opus-5-5")
    assert aff.model_for(convo([thinking("sig-a")])) == "claude-opus-5-5"
    assert aff.model_for(convo([thinking("sig-unknown")])) is None
    aff.remember(["sig-b"], "claude-haiku-5-5")
    assert aff.model_for(convo([thinking("sig-a"), thinking("sig-b")])) is None  # two writers: no affinity
    assert aff.model_for(convo([thinking("sig-a"), thinking("sig-x")])) is None  # one unseen block
    assert aff.wrote(thinking("sig-b"), "claude-haiku-5-5") and not aff.wrote(thinking("sig-b"), "claude-opus-5-5")
    aff.remember(["sig-c"], None)  # no model known: nothing remembered
    assert len(aff) == 2


def test_memory_is_bounded_least_recently_used_first() -> None:
    aff = ThinkingAffinity(capacity=2)
    aff.remember(["a"], "m1")
    aff.remember(["b"], "m2")
    assert aff.model_for(convo([thinking("a")])) == "m1"  # a is now the most recently used
    aff.remember(["c"], "m3")
    assert len(aff) == 2
    assert aff.model_for(convo([thinking("b")])) is None
    assert aff.model_for(convo([thinking("a")])) == "m1"
    with pytest.raises(ValueError):
        ThinkingAffinity(capacity=0)


def test_shared_through_redis_across_replicas(redis_url):
    import asyncio

    from tierwise.affinity import ThinkingAffinity

    body = {"messages": [{"role": "user", "content": "q"},
                         {"role": "assistant", "content": [{"type": "thinking", "thinking": "...", "signature": "sig-redis-1"}]},
                         {"role": "user", "content": "next"}]}

    async def go():
        a = ThinkingAffinity(redis_url=redis_url, prefix="tierwise-test:thinking:")
        b = ThinkingAffinity(redis_url=redis_url, prefix="tierwise-test:thinking:")
        try:
            a.remember(["sig-redis-1"], "claude-opus-5-5")
            await a.aflush()
            before = b.model_for(body)      # replica b has not seen it...
            await b.aprefetch(body)         # ...until it looks in Redis
            after = b.model_for(body)
        finally:
            await a._redis.delete(*[k async for k in a._redis.scan_iter("tierwise-test:thinking:*")] or ["x"])
            await a.aclose()
            await b.aclose()
        return before, after

    before, after = asyncio.run(go())
    assert before is None and after == "claude-opus-5-5"
