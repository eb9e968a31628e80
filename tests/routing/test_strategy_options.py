"""Strategy options are validated like the rest of the config; one table registers strategies."""

from __future__ import annotations

import pytest

from tierwise.config import load_settings
from tierwise.errors import ConfigError
from tierwise.routing.base import STRATEGIES, Decision, add_strategy, available, build_router, strategy_options


def test_a_misspelt_option_is_a_config_error_naming_the_key_and_the_valid_ones(tmp_path):
    cfg = tmp_path / "tierwise.toml"
    cfg.write_text("[routing.options.heuristic]\nfast_belw = 3\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    msg = str(exc.value)
    assert "routing.options.heuristic.fast_belw" in msg and "unknown option" in msg
    assert "deep_from, fast_below, weights" in msg


def test_task_options_are_checked_against_that_task_s_strategy():
    with pytest.raises(ConfigError, match=r"routing\.task_options\.extract_entities\.ladderr: unknown option.*ladder"):
        load_settings(None, overrides={"routing": {"strategies": {"extract_entities": "cascade"},
                                                   "task_options": {"extract_entities": {"ladderr": ["fast"]}}}},
                      environ={})
    with pytest.raises(ConfigError, match=r"routing\.task_options\.draft_email: .*no \[routing\.strategies\] entry"):
        load_settings(None, overrides={"routing": {"task_options": {"draft_email": {"ladder": ["fast"]}}}}, environ={})


def test_unknown_strategy_names_are_config_errors():
    with pytest.raises(ConfigError, match=r"routing\.options\.heurstic: unknown routing strategy"):
        load_settings(None, overrides={"routing": {"options": {"heurstic": {}}}}, environ={})
    with pytest.raises(ConfigError, match=r"routing\.auto: unknown routing strategy 'lerned'"):
        load_settings(None, overrides={"routing": {"auto": "lerned"}}, environ={})
    with pytest.raises(ConfigError, match=r"routing\.strategies\.draft_email: unknown routing strategy"):
        load_settings(None, overrides={"routing": {"strategies": {"draft_email": "nope"}}}, environ={})


def test_prior_options_are_checked_too():
    with pytest.raises(ConfigError, match=r"routing\.options\.prior\.stickyy: unknown option.*sticky"):
        load_settings(None, overrides={"routing": {"options": {"prior": {"stickyy": True}}}}, environ={})


def test_build_router_refuses_an_unknown_option_and_gives_upstream_only_to_who_takes_it():
    s = load_settings(None, environ={})
    with pytest.raises(ConfigError, match=r"routing\.options\.fixed\.tierr: unknown option.*valid: tier"):
        build_router("fixed", s, tierr="fast")
    assert build_router("fixed", s, upstream=object(), tier="fast").tier == "fast"


def test_every_strategy_declares_its_options():
    for name in available():
        assert strategy_options(name) is not None, name


def test_a_strategy_added_at_run_time_is_built_and_validated():
    class Always:
        name = "always"

        def __init__(self, settings, tier: str = "fast") -> None:
            self.tier = tier

        def decide(self, request):
            return Decision(tier=self.tier, router=self.name)

    add_strategy("always", Always)
    try:
        s = load_settings(None, overrides={"routing": {"auto": "always", "options": {"always": {"tier": "deep"}}}},
                          environ={})
        assert build_router("always", s, **s.routing["options"]["always"]).tier == "deep"
        with pytest.raises(ConfigError, match="routing.options.always.tire"):
            load_settings(None, overrides={"routing": {"options": {"always": {"tire": "deep"}}}}, environ={})
    finally:
        STRATEGIES.pop("always")
