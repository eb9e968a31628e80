"""Which live calls may be replayed, on which tier; config validation of [shadow]."""

import pytest

from tierwise.config import load_settings
from tierwise.errors import ConfigError
from tierwise.shadow.policy import pair_sides, shadow_tier_for, share_for, side_effect_reason
from tierwise.shadow.verdicts import verdict_for

ORDER = ["fast", "balanced", "deep", "frontier"]


def test_no_tools_no_side_effects():
    assert side_effect_reason({"messages": [{"role": "user", "content": "hi"}]}, frozenset()) is None


def test_a_tool_not_marked_read_only_is_never_replayed():
    body = {"tools": [{"name": "send_email", "input_schema": {}}], "messages": [{"role": "user", "content": "x"}]}
    assert "send_email" in side_effect_reason(body, frozenset({"lookup"}))
    assert side_effect_reason(body, frozenset({"send_email"})) is None


def test_server_tools_count_as_side_effects_unless_listed():
    body = {"tools": [{"type": "web_search_20250305", "name": "web_search"}], "messages": [{"role": "user", "content": "x"}]}
    assert side_effect_reason(body, frozenset()) is not None


@pytest.mark.parametrize("block", [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                                   {"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}])
def test_tool_turns_are_never_replayed(block):
    body = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [block]}]}
    assert side_effect_reason(body, frozenset({"lookup"})) is not None


def test_mcp_servers_are_never_replayed():
    assert side_effect_reason({"mcp_servers": [{"url": "x"}], "messages": []}, frozenset()) == "MCP servers"


def test_comparison_tier():
    assert shadow_tier_for("draft_email", "balanced", {}, ORDER) == "fast"        # next cheaper
    assert shadow_tier_for("classify_intent", "fast", {}, ORDER) == "balanced"    # next stronger
    assert shadow_tier_for("security_review", "deep", {}, ORDER) == "balanced"
    assert shadow_tier_for("security_review", "deep", {"security_review": "fast"}, ORDER) == "fast"  # configured pair
    assert shadow_tier_for("x", "fast", {"x": "fast"}, ORDER) is None
    assert shadow_tier_for("x", None, {}, ORDER) is None
    assert pair_sides("balanced", "fast", ORDER) == ("fast", "balanced")
    assert pair_sides("fast", "balanced", ORDER) == ("fast", "balanced")


def test_shares():
    conf = {"sample": 0.1, "auto": 0.2, "tasks": {"draft_email": 0.5}}
    assert share_for("draft_email", conf) == 0.5
    assert share_for("review_code", conf) == 0.1
    assert share_for("auto", conf) == 0.2


@pytest.mark.parametrize("k,n,want", [
    (0, 10, "collecting"),        # under min_pairs
    (2, 200, "cheap"),            # 1%: upper end of the interval under 8%
    (4, 40, "collecting"),        # 10% on 40 pairs: interval reaches into the move band
    (40, 200, "strong"),          # 20%
    (13, 200, "review"),          # 6.5%: between the lines
    (1, 30, "collecting"),        # 3.3% but the interval reaches 17%
])
def test_verdict_rule(k, n, want):
    assert verdict_for(k, n, move_below=0.05, stay_above=0.08, confidence=0.95, min_pairs=30) == want


@pytest.mark.parametrize("shadow,needle", [
    ({"bogus": 1}, "shadow.bogus: unknown key"),
    ({"sample": 1.5}, "shadow.sample"),
    ({"tasks": {"draft_email": 2}}, "shadow.tasks.draft_email"),
    ({"compare": {"draft_email": "cheapest"}}, "shadow.compare.draft_email: unknown tier"),
    ({"apply": "always"}, "shadow.apply"),
    ({"move_below": 0.1, "stay_above": 0.05}, "shadow.move_below"),
    ({"exclude_keys": "k1"}, "shadow.exclude_keys"),
    ({"checks": {"draft_email": [{"type": "judge"}]}}, "shadow.checks.draft_email.0"),
    ({"learn_mix": "seventy"}, "shadow.learn_mix"),
])
def test_shadow_config_is_validated(shadow, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_settings(None, overrides={"shadow": shadow}, environ={})


def test_shadow_defaults_in_one_place():
    s = load_settings(None, environ={})
    sh = s.raw["shadow"]
    assert sh["enabled"] is False and sh["apply"] == "recommend" and sh["move_below"] == 0.05 and sh["stay_above"] == 0.08


def test_offline_quality_option_is_validated():
    with pytest.raises(ConfigError, match="upstream.offline.quality"):
        load_settings(None, overrides={"upstream": {"offline": {"quality": "perfect"}}}, environ={})
