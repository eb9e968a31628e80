"""The seeds' cost matrix: its worked example reproduced exactly, catalog prices, input checks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tierwise.catalog import load_catalog
from tierwise.cost import Usage, cost_nanos
from tierwise.costmatrix import (
    SEED_PRICES,
    CostMatrixError,
    catalog_prices,
    monthly_matrix,
    parse_mix,
    parse_tiers,
    seed_prices,
)


def seed_example(mix: str = "70/30"):
    tiers = ["fast", "balanced"]
    return monthly_matrix(calls_per_day=1000, input_tokens=500, output_tokens=200, days=30, tiers=tiers,
                          mix=parse_mix(mix, 2), prices=seed_prices(tiers), default_tier="balanced", source="seed")


def test_seed_example_is_reproduced():
    m = seed_example()
    assert m.by_tier("fast").monthly_usd == Decimal("36")
    assert m.by_tier("balanced").monthly_usd == Decimal("135")
    assert m.mix.monthly_usd == Decimal("65.70")            # 0.7 * 36 + 0.3 * 135, the seed's "roughly $65"
    assert m.mix.savings_usd == Decimal("69.30")
    assert m.mix.yearly_savings_usd == Decimal("831.60")    # the seed's "about $840/year"
    assert m.baseline.tier == "balanced" and m.baseline.savings_usd == 0
    assert m.by_tier("fast").savings_pct == pytest.approx(Decimal(99) / Decimal(135) * 100)
    assert [r.label for r in m.rows] == ["All fast", "All balanced", "Mix 70% fast / 30% balanced"]


def test_seed_prices_are_the_seeds_figures():
    assert (SEED_PRICES["fast"].input, SEED_PRICES["fast"].output) == (Decimal("0.80"), Decimal("4"))
    assert (SEED_PRICES["balanced"].input, SEED_PRICES["balanced"].output) == (Decimal("3"), Decimal("15"))
    assert (SEED_PRICES["deep"].input, SEED_PRICES["deep"].output) == (Decimal("15"), Decimal("75"))


def test_catalog_prices_agree_with_the_ledger_costing():
    catalog = load_catalog()
    tiers = ["fast", "balanced", "deep"]
    prices = catalog_prices(catalog, tiers, input_tokens=500)
    m = monthly_matrix(calls_per_day=10, input_tokens=500, output_tokens=200, days=3, tiers=tiers,
                       mix=parse_mix("50/25/25", 3), prices=prices, default_tier="balanced")
    expect = {}
    for t in tiers:
        per_call = cost_nanos(catalog.model_for_tier(t), Usage(input_tokens=500, output_tokens=200))
        expect[t] = Decimal(per_call * 30) / Decimal(10**9)
        assert m.by_tier(t).monthly_usd == expect[t]
    assert m.mix.monthly_usd == expect["fast"] / 2 + expect["balanced"] / 4 + expect["deep"] / 4


def test_long_prompt_band_applies_with_catalog_prices():
    catalog = load_catalog()
    fast = catalog.model_for_tier("fast")
    band = fast.price_at().long_threshold
    short = catalog_prices(catalog, ["fast"], input_tokens=band)["fast"]
    long = catalog_prices(catalog, ["fast"], input_tokens=band + 1)["fast"]
    assert long.input == fast.price_at().long_rates.input and short.input == fast.price_at().rates.input
    assert long.input > short.input


def test_default_tier_is_added_as_baseline_when_not_in_the_mix():
    tiers = ["fast", "deep"]
    m = monthly_matrix(calls_per_day=1000, input_tokens=500, output_tokens=200, days=30, tiers=tiers,
                       mix=parse_mix("90/10", 2), prices=seed_prices(tiers + ["balanced"]), default_tier="balanced")
    assert [r.tier for r in m.rows] == ["fast", "deep", "balanced", None]
    assert m.mix.monthly_usd == Decimal("0.9") * 36 + Decimal("0.1") * m.by_tier("deep").monthly_usd


@pytest.mark.parametrize("text,n,message", [
    ("70/20", 2, "sums to 90%"),
    ("70/30", 3, "has 2 part(s) but --tiers names 3"),
    ("seventy/30", 2, "percentages separated by '/'"),
    ("-10/110", 2, "percentages separated by '/'"),
    ("", 1, "percentages separated by '/'"),
])
def test_bad_mixes_are_explained(text, n, message):
    with pytest.raises(CostMatrixError) as exc:
        parse_mix(text, n)
    assert message in str(exc.value)


def test_mix_accepts_decimals_and_other_separators():
    assert parse_mix("33.5/66.5", 2) == [Decimal("0.335"), Decimal("0.665")]
    assert parse_mix("100", 1) == [Decimal(1)]


def test_tier_and_workload_checks():
    with pytest.raises(CostMatrixError, match="unknown tier"):
        parse_tiers("fast,turbo", ["fast", "balanced"])
    with pytest.raises(CostMatrixError, match="listed twice"):
        parse_tiers("fast,fast", ["fast", "balanced"])
    with pytest.raises(CostMatrixError, match="no price for tier"):
        seed_prices(["frontier"])
    with pytest.raises(CostMatrixError, match="--calls-per-day must be at least 1"):
        monthly_matrix(calls_per_day=0, input_tokens=1, output_tokens=1, days=30, tiers=["fast"], mix=[Decimal(1)],
                       prices=seed_prices(["fast", "balanced"]), default_tier="balanced")
