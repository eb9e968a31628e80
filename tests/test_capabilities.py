"""Capability-aware routing: a routed request goes to the cheapest configured tier that can serve it."""

from __future__ import annotations

import pytest

from tierwise.adapt import adapt_request
from tierwise.capabilities import display_name, lacks, needs_of, serving_tier
from tierwise.config import load_settings
from tierwise.dispatch import Dispatcher, prompt_text, validate_body
from tierwise.errors import InvalidRequestError

USER = [{"role": "user", "content": "review this code: def f(): pass"}]
TOOLS = [{"name": "t", "input_schema": {"type": "object"}}]


def dispatcher(**catalog):
    return Dispatcher(load_settings(None, overrides={"catalog": catalog} if catalog else None, environ={}))


def test_display_names():
    cat = dispatcher().catalog
    assert display_name(cat.get("claude-sonnet-5-5")) == "Sonnet 5.5"
    assert display_name(cat.get("claude-opus-4-8")) == "Opus 4.8"


@pytest.mark.parametrize("model", ["tierwise/review_code", "auto"])
def test_forced_tool_use_on_sonnet_goes_to_the_cheapest_tier_that_serves_it(model):
    d = dispatcher()
    body = {"model": model, "max_tokens": 100, "tools": TOOLS, "tool_choice": {"type": "tool", "name": "t"},
            "messages": [{"role": "user", "content": "Review this change carefully for correctness and design: " * 5}]}
    plan = d.plan(body, betas=None)
    assert plan.model_id != "claude-sonnet-5-5" and body["tool_choice"] == {"type": "tool", "name": "t"}
    if model == "tierwise/review_code":  # the registry's choice for review_code is balanced: Sonnet 5.5
        assert plan.model_id == "claude-haiku-5-5" and plan.tier == "fast"
        assert "forced tool use: Sonnet 5.5 rejects it -> claude-haiku-5-5 (fast), the cheapest tier" in \
            plan.decision.reason_text()


def test_cheapest_is_by_price_not_tier_order():
    # fast tier configured to a pricier model than balanced: Sonnet 4.6 (3/15) vs Haiku 5.5 (0.10/0.50) on deep
    d = dispatcher(tiers={"fast": "claude-sonnet-4-6", "balanced": "claude-sonnet-5-5", "deep": "claude-haiku-5-5"})
    body = {"model": "tierwise/review_code", "max_tokens": 100, "tools": TOOLS, "tool_choice": {"type": "tool", "name": "t"},
            "messages": USER}
    assert d.plan(body).model_id == "claude-haiku-5-5"


def test_prefill_and_thinking_disabled_follow_the_catalog():
    d = dispatcher()
    prefill = {"model": "tierwise/security_review", "max_tokens": 100,
               "messages": USER + [{"role": "assistant", "content": "{"}]}
    plan = d.plan(prefill)
    # every 5.5 model rejects a final assistant turn; the catalog knows no such limit for Fable 5.1
    assert plan.model_id == "claude-fable-5-1" and "prefill (a final assistant turn): Opus 5.5 rejects it" in \
        plan.decision.reason_text()
    off = {"model": "tierwise/security_review", "max_tokens": 100, "thinking": {"type": "disabled"}, "messages": USER}
    plan = d.plan(off)  # security_review -> deep (Opus 5.5), which rejects thinking disabled; Haiku turns it off
    assert plan.model_id == "claude-haiku-5-5" and "thinking disabled: Opus 5.5 rejects it" in plan.decision.reason_text()
    assert off["thinking"] == {"type": "disabled"}


def test_a_model_that_serves_the_request_is_left_alone():
    d = dispatcher()
    body = {"model": "tierwise/review_code", "max_tokens": 100, "tools": TOOLS, "tool_choice": {"type": "auto"},
            "messages": USER}
    plan = d.plan(body)
    assert plan.model_id == "claude-sonnet-5-5" and "cheapest tier" not in plan.decision.reason_text()


def test_explicit_model_ids_are_never_moved():
    d = dispatcher()
    body = {"model": "claude-sonnet-5-5", "max_tokens": 100, "tools": TOOLS, "tool_choice": {"type": "tool", "name": "t"},
            "messages": USER + [{"role": "assistant", "content": "{"}]}
    plan = d.plan(body)
    assert not plan.routed and plan.model_id == "claude-sonnet-5-5" and body["model"] == "claude-sonnet-5-5"


def test_betas_and_block_types_a_model_refuses():
    models = [{"id": "claude-haiku-5-5", "family": "haiku", "context_window": 1_000_000, "max_output": 128_000,
               "rejects_betas": ["files-api-2025-04-14"], "rejects_block_types": ["container_upload"],
               "prices": [{"input": 0.1, "output": 0.5, "cache_write_5m": 0.125, "cache_write_1h": 0.2, "cache_read": 0.01}]}]
    d = dispatcher(models=models)
    body = {"model": "tierwise/classify_intent", "max_tokens": 10, "messages": USER}
    assert d.plan(dict(body)).model_id == "claude-haiku-5-5"
    plan = d.plan(dict(body), betas="context-1m-2025-08-07, files-api-2025-04-14")
    assert plan.model_id == "claude-sonnet-5-5" and "beta files-api-2025-04-14: Haiku 5.5 rejects it" in \
        plan.decision.reason_text()
    blocks = dict(body, messages=[{"role": "user", "content": [{"type": "container_upload", "file_id": "f"}]}])
    plan = d.plan(blocks)
    assert plan.model_id == "claude-sonnet-5-5" and "container_upload blocks: Haiku 5.5 rejects them" in \
        plan.decision.reason_text()


def test_context_window_and_output_limit():
    d = dispatcher(tiers={"fast": "claude-haiku-4-5"})  # Haiku 4.5: 200K context, 64K output
    cat = d.catalog
    assert cat.get("claude-haiku-4-5").context_window == 200_000
    big = {"model": "tierwise/classify_intent", "max_tokens": 10,
           "messages": [{"role": "user", "content": "word " * 200_000}]}
    plan = d.plan(big)
    assert plan.model_id == "claude-sonnet-5-5" and "context window" in plan.decision.reason_text()
    out = {"model": "tierwise/classify_intent", "max_tokens": 100_000, "messages": USER}
    plan = d.plan(out)
    assert plan.model_id == "claude-sonnet-5-5" and "max_tokens 100,000: Haiku 4.5 writes at most" in \
        plan.decision.reason_text()
    # no tier writes 200K: the chosen model stays and max_tokens is lowered to its limit (as before)
    huge = {"model": "tierwise/review_code", "max_tokens": 200_000, "messages": USER}
    plan = d.plan(huge)
    assert plan.model_id == "claude-sonnet-5-5" and huge["max_tokens"] == 128_000 and "max_tokens:200000->128000" in plan.adapted


def test_system_messages_on_a_tier_that_rejects_them():
    body = {"model": "tierwise/classify_intent", "max_tokens": 10,
            "messages": USER + [{"role": "system", "content": "be brief"}, {"role": "user", "content": "go"}]}
    d = dispatcher(tiers={"fast": "claude-haiku-4-5"})
    plan = d.plan(dict(body))
    assert plan.model_id == "claude-sonnet-5-5" and "mid-conversation system messages: Haiku 4.5 rejects them" in \
        plan.decision.reason_text()
    only_old = dispatcher(tiers={"fast": "claude-haiku-4-5", "balanced": "claude-sonnet-4-6", "deep": "claude-opus-4-8",
                                 "frontier": "claude-opus-4-8"})
    with pytest.raises(InvalidRequestError) as exc:
        only_old.plan(dict(body))
    # the API's wording: Claude Code retries without mid-conversation system messages when it sees it
    assert exc.value.status == 400 and 'Unexpected role "system"' in exc.value.message
    assert "input message role" in exc.value.message


def test_routing_copes_with_any_body():
    odd = {"model": "auto", "max_tokens": 10, "system": [{"type": "text", "text": 5}, "x", {"type": "weird"}],
           "messages": [1, None, {"role": "system", "content": {"a": 1}}, {"role": "user", "content": [
               {"type": "text", "text": ["not", "a", "string"]}, {"type": "image"}, "str", {"type": "text", "text": "hi"}]}]}
    validate_body(odd)
    assert prompt_text(odd).endswith("hi")
    plan = dispatcher().plan(odd)
    assert plan.routed and odd["messages"][2] == {"role": "system", "content": {"a": 1}}


def test_adaptation_keeps_system_messages_and_unknown_content():
    cat = dispatcher().catalog
    messages = [{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "brand_new", "z": 1}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                                  {"type": "text", "text": "y"}]},
                {"role": "system", "content": "plan mode"},
                {"role": "user", "content": "go"}]
    body = {"max_tokens": 10, "temperature": 0.3, "messages": messages, "future_field": [1]}
    changes = adapt_request(body, cat.get("claude-opus-5-5"))
    assert "stripped:thinking_blocks=1" in changes and "dropped:temperature" in changes
    assert body["messages"][0] == messages[0] and body["messages"][2] == {"role": "system", "content": "plan mode"}
    assert body["future_field"] == [1] and len(body["messages"]) == 4


def test_validate_body_tolerates_what_tierwise_does_not_own():
    body = {"model": "auto", "max_tokens": 5, "messages": [{"role": "system", "content": "s"}, {"role": "tool"}],
            "anything": True, "stream": False}
    assert validate_body(body) is body
    with pytest.raises(InvalidRequestError, match="stream: Input should be a valid boolean"):
        validate_body(dict(body, stream="yes"))


def test_needs_and_lacks():
    cat = dispatcher().catalog
    n = needs_of({"tool_choice": {"type": "tool", "name": "t"}, "max_tokens": 5, "messages": []}, 0)
    assert lacks(cat.get("claude-sonnet-5-5"), n) == "forced tool use: Sonnet 5.5 rejects it"
    assert lacks(cat.get("claude-opus-5-5"), n) is None
    assert serving_tier(cat, n, allowed=lambda t: t != "fast") == "deep"


def test_a_cascade_climbs_only_through_tiers_that_serve_the_request():
    settings = load_settings(None, overrides={"routing": {
        "strategies": {"extract_entities": "cascade"},
        "task_options": {"extract_entities": {"ladder": ["fast", "balanced", "deep"],
                                              "verifiers": [{"type": "regex", "pattern": "x"}]}}}}, environ={})
    d = Dispatcher(settings)
    body = {"model": "tierwise/extract_entities", "max_tokens": 50, "tools": TOOLS,
            "tool_choice": {"type": "tool", "name": "t"}, "messages": USER}
    plan = d.plan(body)
    assert plan.decision.cascade is not None and tuple(plan.decision.cascade.ladder) == ("fast", "deep")
    plain = d.plan({"model": "tierwise/extract_entities", "max_tokens": 50, "messages": USER})
    assert tuple(plain.decision.cascade.ladder) == ("fast", "balanced", "deep")


def test_a_thinking_budget_routed_to_a_5_5_model_is_made_adaptive():
    # litellm turns thinking "adaptive" into a budget for a model it does not know ("auto"): every 5.5 model
    # rejects budgets, so a routed request is adapted (Haiku 5.5 included)
    body = {"model": "tierwise/classify_intent", "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": USER}
    plan = dispatcher().plan(body)
    assert plan.model_id == "claude-haiku-5-5" and body["thinking"] == {"type": "adaptive"}
    assert "thinking:enabled->adaptive" in plan.adapted
