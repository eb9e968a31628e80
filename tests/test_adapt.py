from __future__ import annotations

import pytest

from tierwise.adapt import adapt_request
from tierwise.catalog import load_catalog
from tierwise.errors import AdaptationError

CAT = load_catalog()


def test_sampling_params_and_manual_thinking_adapted_for_sonnet_5_5():
    body = {"model": "auto", "max_tokens": 200_000, "temperature": 0.2, "top_p": 0.9, "top_k": 5,
            "thinking": {"type": "enabled", "budget_tokens": 2000}, "metadata": {"user_id": "u1"},
            "future_field": {"kept": True},
            "messages": [{"role": "user", "content": "hi"},
                         {"role": "assistant", "content": [{"type": "thinking", "thinking": "...", "signature": "s"},
                                                           {"type": "text", "text": "hello"}]},
                         {"role": "user", "content": "more"}]}
    changes = adapt_request(body, CAT.get("claude-sonnet-5-5"))
    assert changes == ["dropped:temperature", "dropped:top_p", "dropped:top_k", "thinking:enabled->adaptive",
                       "stripped:thinking_blocks=1", "max_tokens:200000->128000"]
    assert "temperature" not in body and body["thinking"] == {"type": "adaptive"}
    assert body["messages"][1]["content"] == [{"type": "text", "text": "hello"}]
    assert body["metadata"] == {"user_id": "u1"} and body["future_field"] == {"kept": True}


def test_older_models_keep_sampling_params():
    # every 5.5 model rejects non-default sampling parameters (Haiku 5.5 included); Haiku 4.5 takes them
    body = {"temperature": 0.2, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    assert adapt_request(body, CAT.get("claude-haiku-4-5")) == []
    assert body["temperature"] == 0.2
    assert adapt_request(body, CAT.get("claude-haiku-5-5")) == ["dropped:temperature"]


def test_default_temperature_is_dropped_silently():
    body = {"temperature": 1.0, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    assert adapt_request(body, CAT.get("claude-opus-5-5")) == []
    assert "temperature" not in body


def test_forced_tool_use_cannot_be_adapted_to_sonnet_5_5():
    body = {"max_tokens": 10, "tool_choice": {"type": "tool", "name": "t"}, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(AdaptationError, match="rejects forced tool use") as exc:
        adapt_request(body, CAT.get("claude-sonnet-5-5"), tier="balanced")
    assert exc.value.status == 400
    assert adapt_request({"max_tokens": 10, "tool_choice": {"type": "tool", "name": "t"}, "messages": []}, CAT.get("claude-opus-5-5")) == []
