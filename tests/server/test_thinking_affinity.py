"""A conversation that sends thinking blocks back stays on the model that wrote them (tierwise.affinity).

The offline upstream signs its thinking blocks per model and, like the real API, refuses a thinking
block another model wrote, so a 200 here also proves no foreign block was sent upstream."""

from __future__ import annotations

import httpx2 as httpx
import orjson
import pytest

from tierwise.upstream.offline import thinking_signature

HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "sk-test", "content-type": "application/json"}
THINK = {"type": "adaptive"}


def post(proxy, body: dict) -> httpx.Response:
    return httpx.post(proxy.url + "/v1/messages", content=orjson.dumps(body), headers=HEADERS, timeout=10)


def answer_blocks(resp: httpx.Response, stream: bool) -> list[dict]:
    if not stream:
        return resp.json()["content"]
    blocks: dict[int, dict] = {}
    for line in resp.text.splitlines():
        if not line.startswith("data:"):
            continue
        ev = orjson.loads(line[5:])
        if ev["type"] == "content_block_start":
            blocks[ev["index"]] = dict(ev["content_block"])
        elif ev["type"] == "content_block_delta":
            b, d = blocks[ev["index"]], ev["delta"]
            if d["type"] == "thinking_delta":
                b["thinking"] += d["thinking"]
            elif d["type"] == "signature_delta":
                b["signature"] = d["signature"]
            elif d["type"] == "text_delta":
                b["text"] += d["text"]
    return [blocks[i] for i in sorted(blocks)]


@pytest.mark.parametrize("stream", [False, True])
def test_a_thinking_conversation_stays_on_the_model_that_wrote_its_blocks(proxy_factory, stream: bool) -> None:
    proxy = proxy_factory()
    question = {"role": "user", "content": "Review this deployment plan for irreversible steps before we run it."}
    first = post(proxy, {"model": "tierwise/plan_irreversible", "max_tokens": 400, "thinking": THINK, "stream": stream,
                         "messages": [question]})
    assert first.status_code == 200, first.text
    deep_model = first.headers["x-tierwise-model"]
    blocks = answer_blocks(first, stream)
    assert blocks[0]["type"] == "thinking" and blocks[0]["signature"]

    # the follow-up is trivial: on its own `auto` would send it to a cheaper tier
    follow = {"role": "user", "content": "ok thanks"}
    alone = post(proxy, {"model": "auto", "max_tokens": 50, "messages": [follow]})
    assert alone.headers["x-tierwise-model"] != deep_model

    second = post(proxy, {"model": "auto", "max_tokens": 50, "thinking": THINK,
                          "messages": [question, {"role": "assistant", "content": blocks}, follow]})
    assert second.status_code == 200, second.text  # the offline upstream refuses foreign thinking blocks
    assert second.headers["x-tierwise-model"] == deep_model
    assert second.headers["x-tierwise-router"] == "affinity"
    assert "thinking blocks" in second.headers["x-tierwise-reason"]
    assert "stripped" not in second.headers.get("x-tierwise-adapted", "")


def test_blocks_this_proxy_never_saw_are_stripped_not_forwarded(proxy_factory) -> None:
    proxy = proxy_factory()
    foreign = {"type": "thinking", "thinking": "...", "signature": thinking_signature("claude-opus-5-5", "0" * 32)}
    resp = post(proxy, {"model": "auto", "max_tokens": 50, "thinking": THINK, "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": [foreign, {"type": "text", "text": "hello"}]},
        {"role": "user", "content": "ok thanks"}]})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-tierwise-router"] != "affinity"
    assert "stripped:thinking_blocks=1" in resp.headers["x-tierwise-adapted"]


def test_affinity_off_strips_as_before(proxy_factory) -> None:
    proxy = proxy_factory(routing={"thinking_affinity": 0})
    question = {"role": "user", "content": "Review this deployment plan for irreversible steps before we run it."}
    first = post(proxy, {"model": "tierwise/plan_irreversible", "max_tokens": 400, "thinking": THINK, "messages": [question]})
    second = post(proxy, {"model": "auto", "max_tokens": 50, "thinking": THINK, "messages": [
        question, {"role": "assistant", "content": first.json()["content"]}, {"role": "user", "content": "ok thanks"}]})
    assert second.status_code == 200, second.text
    assert second.headers["x-tierwise-router"] != "affinity"
    assert "stripped:thinking_blocks=1" in second.headers["x-tierwise-adapted"]


def test_an_explicit_model_is_never_moved(proxy_factory) -> None:
    proxy = proxy_factory()
    question = {"role": "user", "content": "Review this deployment plan for irreversible steps before we run it."}
    first = post(proxy, {"model": "tierwise/plan_irreversible", "max_tokens": 400, "thinking": THINK, "messages": [question]})
    second = post(proxy, {"model": "claude-haiku-5-5", "max_tokens": 50, "messages": [
        question, {"role": "assistant", "content": first.json()["content"]}, {"role": "user", "content": "ok thanks"}]})
    # passed through untouched: the upstream (like the real API) refuses the other model's block
    assert second.status_code == 400
    assert second.json()["error"]["type"] == "invalid_request_error"
    assert "signature" in second.json()["error"]["message"]
