from __future__ import annotations

import pytest

from tierwise.catalog import load_catalog
from tierwise.errors import ConfigError


def test_tiers_are_ordered_by_capability_and_price():
    cat = load_catalog()
    assert cat.tier_order == ["fast", "balanced", "deep", "frontier"]
    prices = [cat.model_for_tier(t).price_at().rates.input for t in cat.tier_order]
    assert prices == sorted(prices)
    assert cat.tier_of("claude-sonnet-5-5") == "balanced"
    assert cat.tiers_above("balanced") == ["deep", "frontier"]


def test_constraints_and_limits():
    cat = load_catalog()
    sonnet = cat.get("claude-sonnet-5-5")
    assert sonnet.rejects_sampling_params and sonnet.rejects_manual_thinking and sonnet.rejects_forced_tool_use
    # all three 5.5 models: sampling parameters, thinking budgets and prefill refused (reference, 2026-12-02)
    for mid in ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5"):
        m = cat.get(mid)
        assert m.rejects_sampling_params and m.rejects_manual_thinking and m.rejects_prefill, mid
    assert not cat.get("claude-haiku-4-5").rejects_sampling_params
    assert cat.get("claude-opus-5-5").rejects_thinking_disabled and not cat.get("claude-haiku-5-5").rejects_thinking_disabled
    assert not cat.get("claude-haiku-5-5").rejects_forced_tool_use and not cat.get("claude-opus-5-5").rejects_forced_tool_use
    assert cat.get("claude-haiku-5-5").context_window == 1_000_000
    assert cat.get("claude-sonnet-4-5").upstream_id("bedrock") == "anthropic.claude-sonnet-4-5-20250929-v1:0"


def test_next_release_moves_one_line_of_config():
    cat = load_catalog({"tiers": {"fast": "claude-haiku-4-5"},
                        "models": [{"id": "claude-haiku-6", "family": "haiku",
                                    "prices": [{"input": 0.05, "output": 0.25, "cache_write_5m": 0.0625,
                                                "cache_write_1h": 0.1, "cache_read": 0.005}]}]})
    assert cat.model_for_tier("fast").id == "claude-haiku-4-5"
    assert cat.get("claude-haiku-6").price_at().rates.output == 0.25


def test_bad_override_names_the_key():
    with pytest.raises(ConfigError, match=r"catalog.tiers.fast: model 'claude-nope' is not in the catalog"):
        load_catalog({"tiers": {"fast": "claude-nope"}})
    with pytest.raises(ConfigError, match=r"prices\[0\]: missing price field\(s\) cache_read"):
        load_catalog({"models": [{"id": "m", "prices": [{"input": 1, "output": 1, "cache_write_5m": 1, "cache_write_1h": 1}]}]})
