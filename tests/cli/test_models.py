"""``tierwise models``: the tier mapping first, then the whole catalog."""

from __future__ import annotations

import json

import pytest

from tierwise.catalog import load_catalog


@pytest.fixture
def run(cli):
    return cli


@pytest.mark.parametrize("columns", [200, 80])
def test_tier_mapping_comes_first_then_every_model(run, columns):
    result = run("models", columns=columns)
    assert result.exit_code == 0, result.output
    out = result.stdout
    catalog = load_catalog()
    tiers_at = out.index("Tiers")
    assert tiers_at < out.index("Model catalog")
    for tier, model in catalog.tiers.items():
        assert tier in out and model in out
    for m in catalog.listed():
        assert m.id in out
    assert "legacy" in out and "retired" in out
    assert "$0.125" in out  # Haiku 5.5's 5-minute cache write: three decimals kept
    assert "> 100K" in out  # its long-prompt band


def test_json_lists_prices_and_constraints(run):
    result = run("models", "--json", "--no-retired")
    data = json.loads(result.stdout)
    catalog = load_catalog()
    assert [t["tier"] for t in data["tiers"]] == catalog.tier_order
    by_id = {m["id"]: m for m in data["models"]}
    assert not any(m["status"] == "retired" for m in data["models"])
    sonnet = by_id[catalog.tiers["balanced"]]
    assert sonnet["tier"] == "balanced" and "forced tool use" in sonnet["constraints"]
    haiku = by_id[catalog.tiers["fast"]]
    assert haiku["price_per_mtok"]["long_threshold"] == catalog.model_for_tier("fast").price_at().long_threshold


def test_prices_on_a_date(run):
    catalog = load_catalog()
    sonnet = catalog.model_for_tier("balanced")
    first, last = sonnet.prices[0], sonnet.prices[-1]
    before = json.loads(run("models", "--json", "--on", str(first.effective)).stdout)
    after = json.loads(run("models", "--json", "--on", str(last.effective)).stdout)
    get = lambda d: next(m for m in d["models"] if m["id"] == sonnet.id)["price_per_mtok"]["cache_read"]  # noqa: E731
    assert get(before) == str(first.rates.cache_read) and get(after) == str(last.rates.cache_read)


def test_bad_date_exits_2(run):
    result = run("models", "--on", "tomorrow")
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.stderr
