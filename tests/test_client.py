"""tierwise.Client / AsyncClient: routing in-process over the official SDK, same ledger rows."""

from __future__ import annotations

import anthropic
import pytest

import tierwise

from .conftest import make_settings


def test_task_routes_and_returns_sdk_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = make_settings(tmp_path)
    with tierwise.Client(settings=s, offline=True) as client:
        msg = client.messages.create(task="classify_intent", max_tokens=50,
                                     messages=[{"role": "user", "content": "I was charged twice"}])
        assert isinstance(msg, anthropic.types.Message)
        assert msg.model == "claude-haiku-5-5"
        auto = client.messages.create(max_tokens=300, temperature=0.3, messages=[{"role": "user", "content":
            "Compare these two vendor contracts step by step and analyze the liability trade-offs if either party "
            "terminates early, assuming the renewal clause applies unless notice was given."}])
        assert auto.model in ("claude-sonnet-5-5", "claude-opus-5-5")
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=40,
                                    messages=[{"role": "user", "content": "hi"}]) as stream:
            text = "".join(stream.text_stream)
        assert "claude-haiku-4-5" in text
        client.ledger.flush()
        rows = client.ledger.rows()
    assert [r["model"] for r in rows] == ["claude-haiku-5-5", auto.model, "claude-haiku-4-5"]
    assert rows[0]["task"] == "classify_intent" and rows[0]["cost_nanos"] > 0
    assert rows[1]["adapted"] == "dropped:temperature"  # Sonnet/Opus 5.5 reject non-default temperature
    assert rows[2]["stream"] and rows[2]["router"] == "passthrough"


def test_route_explains_without_calling(tmp_path):
    s = make_settings(tmp_path)
    client = tierwise.Client(settings=s, offline=True, ledger=None)
    d = client.route("Extract the invoice number as JSON: INV-2291 dated 3 May")
    assert d.router == "prior" and d.tier == "fast" and any("extraction" in r for r in d.reasons)
    assert any("fast (seeds)" in r for r in d.reasons)
    assert client.route("Extract the invoice number as JSON: INV-2291", task="extract_entities").tier == "fast"
    with pytest.raises(tierwise.TierwiseError, match="unknown task type"):
        client.route("x", task="nope")


def test_errors_are_recorded_and_raised(tmp_path, fake_anthropic):
    s = make_settings(tmp_path)
    with tierwise.Client(settings=s, base_url=fake_anthropic.url, api_key="k", max_retries=0) as client:
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(task="draft_email", max_tokens=20, messages=[{"role": "user", "content": "x"}],
                                   extra_headers={"x-tierwise-fault": "status=429"})
        client.ledger.flush()
        row = client.ledger.rows()[-1]
    assert row["status"] == 429 and row["error_type"] == "rate_limit_error" and row["tier"] == "balanced"


async def test_async_client(tmp_path):
    s = make_settings(tmp_path)
    async with tierwise.AsyncClient(settings=s, offline=True) as client:
        msg = await client.messages.create(task="summarize_short", max_tokens=40,
                                           messages=[{"role": "user", "content": "Summarize: the meeting moved to 3pm."}])
        async with client.messages.stream(task="review_code", max_tokens=40,
                                          messages=[{"role": "user", "content": "def f(): pass"}]) as stream:
            async for _ in stream.text_stream:
                pass
        client.ledger.flush()
        rows = client.ledger.rows()
    assert msg.model == "claude-haiku-5-5"
    assert [r["tier"] for r in rows] == ["fast", "balanced"]


def test_a_thinking_tool_loop_passes_sdk_blocks_back_and_stays_on_their_model(tmp_path, monkeypatch):
    """The SDK's own content objects go back as the assistant turn: the conversation stays on the
    model that wrote the thinking block (the offline upstream refuses another model's blocks)."""
    monkeypatch.chdir(tmp_path)
    s = make_settings(tmp_path)
    question = {"role": "user", "content": "Review this deployment plan for irreversible steps before we run it."}
    with tierwise.Client(settings=s, offline=True) as client:
        first = client.messages.create(task="plan_irreversible", max_tokens=300, thinking={"type": "adaptive"},
                                       messages=[question])
        assert first.content[0].type == "thinking"
        follow = client.messages.create(max_tokens=50, thinking={"type": "adaptive"}, messages=[
            question, {"role": "assistant", "content": first.content}, {"role": "user", "content": "ok thanks"}])
        assert follow.model == first.model
        alone = client.messages.create(max_tokens=50, messages=[{"role": "user", "content": "ok thanks"}])
        assert alone.model != first.model  # without the thinking blocks `auto` picks a cheaper tier
        client.ledger.flush()
        rows = client.ledger.rows()
    assert rows[1]["router"] == "affinity"
