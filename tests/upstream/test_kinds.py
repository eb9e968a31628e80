"""Upstream kinds: fallbacks name registered kinds; a new kind is one registration away."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tierwise.config import load_settings
from tierwise.dispatch import Dispatcher
from tierwise.errors import ConfigError
from tierwise.resilience import Runtime
from tierwise.upstream.kinds import kinds, model_ids, register_upstream, unregister_upstream
from tierwise.upstream.offline import OfflineUpstream


def test_an_unknown_kind_in_a_fallback_is_a_config_error_naming_it_and_the_kinds():
    with pytest.raises(ConfigError) as exc:
        load_settings(None, overrides={"resilience": {"fallbacks": {"fast": ["bedrok", "next_tier"]}}}, environ={})
    msg = str(exc.value)
    assert "resilience.fallbacks.fast" in msg and "'bedrok'" in msg and "not an upstream kind" in msg
    for k in ("anthropic", "bedrock", "vertex"):
        assert f'"{k}"' in msg


def test_fallback_syntax_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"resilience\.fallbacks\.fastest: unknown tier"):
        load_settings(None, overrides={"resilience": {"fallbacks": {"fastest": ["next_tier"]}}}, environ={})
    with pytest.raises(ConfigError, match=r"resilience\.fallbacks\.fast: 'tier:huge' names an unknown tier"):
        load_settings(None, overrides={"resilience": {"fallbacks": {"fast": ["tier:huge"]}}}, environ={})
    with pytest.raises(ConfigError, match=r"resilience\.fallbacks\.fast: expected a list"):
        load_settings(None, overrides={"resilience": {"fallbacks": {"fast": "bedrock"}}}, environ={})


def test_a_kind_table_value_outside_its_choices_is_refused():
    with pytest.raises(ConfigError, match=r"resilience\.bedrock\.endpoint: must be runtime or mantle"):
        load_settings(None, overrides={"resilience": {"bedrock": {"endpoint": "invoke"}}}, environ={})


def test_built_in_kinds_and_their_model_ids():
    assert {"anthropic", "bedrock", "vertex"} <= set(kinds())
    s = load_settings(None, environ={})
    bedrock = model_ids("bedrock", s.raw["resilience"]["bedrock"], s.catalog)
    assert bedrock["claude-sonnet-5-5"] == "anthropic.claude-sonnet-5-5"
    vertex = model_ids("vertex", {"model_ids": {"claude-sonnet-5-5": "claude-sonnet-5-5@x"}}, s.catalog)
    assert vertex["claude-sonnet-5-5"] == "claude-sonnet-5-5@x" and vertex["claude-haiku-5-5"] == "claude-haiku-5-5"


class _Acme:
    """A third upstream kind: answers nothing here, the chain is what is under test."""

    name = "acme"

    def __init__(self, ids: dict[str, str], url: str) -> None:
        self.ids, self.url, self.closed = ids, url, False

    def supports(self, model_id: str | None) -> bool:
        return model_id in self.ids

    async def send(self, *a, **k):  # pragma: no cover - never called
        raise AssertionError

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def acme():
    built: list[_Acme] = []

    def factory(table, catalog, upstream):
        built.append(_Acme(model_ids("acme", table, catalog), table["url"]))
        return built[-1]

    # served for the Haiku model only
    register_upstream("acme", factory, lambda model, table: f"acme/{model.id}" if model.id.startswith("claude-haiku")
                      else None, defaults={"enabled": False, "url": ""})
    yield built
    unregister_upstream("acme")


def test_a_third_kind_registered_here_is_usable_in_a_fallback_chain(acme):
    s = load_settings(None, overrides={"ledger": {"url": "sqlite://"}, "resilience": {
        "acme": {"enabled": True, "url": "http://127.0.0.1:9"}, "fallbacks": {"fast": ["acme", "next_tier"]}}},
        environ={})
    rt = Runtime(s, OfflineUpstream(), None)
    assert len(acme) == 1 and acme[0].url == "http://127.0.0.1:9" and rt.peers["acme"] is acme[0]
    assert acme[0].ids["claude-haiku-5-5"] == "acme/claude-haiku-5-5"
    body = {"model": "tierwise/classify_intent", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    plan = Dispatcher(s).plan(body)
    chain = rt.chain(plan, body, orjson.dumps(body), None, 100)
    assert [(t.upstream.name, t.model_id, t.kind) for t in chain] == [
        ("offline", "claude-haiku-5-5", "primary"), ("acme", "claude-haiku-5-5", "acme"),
        ("offline", "claude-sonnet-5-5", "tier")]
    asyncio.run(rt.aclose())
    assert acme[0].closed


def test_a_registered_kind_not_enabled_is_refused_at_start(acme):
    s = load_settings(None, overrides={"ledger": {"url": "sqlite://"}, "resilience": {"fallbacks": {"fast": ["acme"]}}},
                      environ={})
    with pytest.raises(ConfigError, match=r"enable \[resilience\.acme\]"):
        Runtime(s, OfflineUpstream(), None)
