"""Conversation state: bounded, expiring, keyed on what every turn repeats; shared through Redis."""

from __future__ import annotations

import asyncio

from tierwise import evaldata
from tierwise.conversation import ConversationState, conversation_key


def test_key_is_stable_across_turns_and_differs_across_sessions():
    t1 = evaldata.agent_body([{"role": "user", "text": "fix the test"}], session="a")
    t2 = evaldata.agent_body([{"role": "user", "text": "fix the test"}, {"role": "assistant", "text": "ok"},
                              {"role": "user", "text": "now the docs"}], session="a")
    other = evaldata.agent_body([{"role": "user", "text": "fix the test"}], session="b")
    assert conversation_key(t1) == conversation_key(t2) != conversation_key(other)
    # a side request of the same session (another system prompt, no tools) is another conversation
    side = {"system": "Generate a title", "metadata": t1["metadata"], "messages": [{"role": "user", "content": "fix the test"}]}
    assert conversation_key(side) != conversation_key(t1)
    assert conversation_key({"messages": []}) is None and conversation_key({}) is None
    assert len(conversation_key(t1)) == 16  # a digest, never the text


def test_bounded_and_expiring():
    now = [0.0]
    st = ConversationState(capacity=2, ttl=60, clock=lambda: now[0])
    st.put(b"a", "m1")
    now[0] = 10
    assert st.get(b"a") == ("m1", 10.0)
    st.put(b"b", "m2")
    st.put(b"c", "m3")
    assert len(st) == 2 and st.get(b"a") is None  # least recently used went first
    now[0] = 100
    assert st.get(b"b") is None  # expired


def test_shared_through_redis(redis_url):
    key = b"\x01" * 16

    async def go():
        a = ConversationState(redis_url=redis_url, prefix="tierwise-test:conv:")
        b = ConversationState(redis_url=redis_url, prefix="tierwise-test:conv:")
        try:
            await a.aput(key, "claude-opus-5-5")
            got = await b.aget(key)  # another replica sees it
            missing = await b.aget(b"\x02" * 16)
        finally:
            await a._redis.delete("tierwise-test:conv:" + key.hex())
            await a.aclose()
            await b.aclose()
        return got, missing

    got, missing = asyncio.run(go())
    assert got is not None and got[0] == "claude-opus-5-5" and got[1] < 60
    assert missing is None


def test_redis_down_falls_back_to_this_process():
    async def go():
        st = ConversationState(redis_url="redis://127.0.0.1:1/0")
        await st.aput(b"k" * 16, "claude-sonnet-5-5")  # the write to Redis fails quietly
        got = await st.aget(b"k" * 16)
        await st.aclose()
        return got

    got = asyncio.run(go())
    assert got is not None and got[0] == "claude-sonnet-5-5"
