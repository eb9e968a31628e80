from __future__ import annotations

import pytest

from tierwise.config import load_settings
from tierwise.errors import ConfigError


def test_precedence_arguments_over_file_over_environment(tmp_path):
    cfg = tmp_path / "tierwise.toml"
    cfg.write_text('[server]\nport = 9001\n[ledger]\nurl = "sqlite:///from-file.db"\n')
    env = {"TIERWISE_PORT": "9002", "TIERWISE_HOST": "0.0.0.0", "TIERWISE_LEDGER_URL": "sqlite:///env.db"}
    s = load_settings(cfg, environ=env)
    assert s.port == 9001                      # file beats environment
    assert s.host == "0.0.0.0"                 # environment beats defaults
    assert s.ledger_url == "sqlite:///from-file.db"
    s = load_settings(cfg, environ=env, overrides={"server": {"port": 9003}})
    assert s.port == 9003                      # arguments beat everything


def test_registry_defaults_and_overrides(tmp_path):
    cfg = tmp_path / "tierwise.toml"
    cfg.write_text('[registry]\nclassify_intent = "balanced"\nticket_triage = "fast"\n')
    s = load_settings(cfg, environ={})
    assert s.registry["classify_intent"] == "balanced" and s.registry["ticket_triage"] == "fast"
    assert s.registry["review_code"] == "balanced"
    assert s.default_tier == "balanced"


@pytest.mark.parametrize("text, message", [
    ('[server]\nport = "eighty"\n', r"tierwise.toml: server.port: expected a whole number, got 'eighty'"),
    ('[server]\nprot = 1\n', r"tierwise.toml: server.prot: unknown key \(known keys here: .*port"),
    ('[registry]\nclassify_intent = "cheap"\n', r"registry.classify_intent: unknown tier 'cheap' \(tiers: fast, balanced"),
    ('[upstream]\nkind = "openai"\n', r"upstream.kind: expected auto, anthropic or offline"),
    ('[server\n', r"tierwise.toml: not valid TOML"),
    ('[monitor]\nmin_samples = 0\n', r"tierwise.toml: monitor.min_samples: must be at least 1, got 0"),
    ('[eval]\nthreshold = 5\n', r"eval.threshold: must be a share between 0 and 1, e.g. 0.05, got 5.0"),
    ('[budgets]\naction = "warn"\n', r"budgets.action: must be refuse or downgrade, got 'warn'"),
    ('[budgets]\non_store_error = "maybe"\n', r"budgets.on_store_error: must be fail_open or fail_closed, got 'maybe'"),
    ('[resilience]\nrate_limits_on_store_error = "open"\n', r"resilience.rate_limits_on_store_error: must be fail_open"),
    ('[resilience.redis]\nmax_connections = 0\n', r"resilience.redis.max_connections: must be at least 1, got 0"),
    ('[resilience.redis]\npool = 3\n', r"resilience.redis.pool: unknown key \(known keys here: connect_timeout, "
                                         r"max_connections, pool_timeout, timeout\)"),
    ('[resilience]\nstore_retry_interval = 0\n', r"resilience.store_retry_interval: must be more than 0 seconds"),
])
def test_config_errors_name_file_key_and_problem(tmp_path, text, message):
    cfg = tmp_path / "tierwise.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg, environ={})


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_upstream_kind_auto_follows_the_api_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s.upstream_kind({}) == "offline"
    assert s.upstream_kind({"ANTHROPIC_API_KEY": "sk-x"}) == "anthropic"
    s = load_settings(environ={"ANTHROPIC_BASE_URL": "http://127.0.0.1:1"})
    assert s.upstream["url"] == "http://127.0.0.1:1"
