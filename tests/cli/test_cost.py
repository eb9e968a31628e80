"""``tierwise cost``: the seed example through the CLI, JSON output, and clear errors."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

SEED_ARGS = ["cost", "--prices", "seed", "--calls-per-day", "1000", "--input-tokens", "500", "--output-tokens", "200",
             "--mix", "70/30"]


@pytest.fixture
def run(cli):
    return cli


def test_seed_example_table(run):
    result = run(*SEED_ARGS)
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    for figure in ("$36.00", "$135.00", "$65.70", "$69.30", "51.3%", "$831.60"):
        assert figure in out
    assert "out of date" in out and "Mix 70% fast / 30% balanced" in out


def test_seed_example_json(run):
    result = run(*SEED_ARGS, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    monthly = {r["label"]: Decimal(r["monthly_usd"]) for r in data["rows"]}
    assert monthly == {"All fast": 36, "All balanced": 135, "Mix 70% fast / 30% balanced": Decimal("65.70")}


def test_catalog_prices_are_the_default(run):
    from tierwise.catalog import load_catalog
    from tierwise.cost import Usage, cost_nanos

    result = run("cost", "--json")
    data = json.loads(result.stdout)
    assert data["prices"] == "catalog"
    haiku = load_catalog().model_for_tier("fast")
    expect = Decimal(cost_nanos(haiku, Usage(input_tokens=500, output_tokens=200)) * 30_000) / Decimal(10**9)
    assert Decimal(data["rows"][0]["monthly_usd"]) == expect


@pytest.mark.parametrize("args,message", [
    (["--mix", "70/20"], "sums to 90%"),
    (["--mix", "50/30/20"], "has 3 part(s) but --tiers names 2"),
    (["--tiers", "fast,turbo"], "unknown tier(s) turbo"),
    (["--prices", "retail"], "choose catalog or seed"),
    (["--prices", "seed", "--tiers", "fast,frontier"], "unknown tier(s) frontier"),
    (["--calls-per-day", "0"], "--calls-per-day must be at least 1"),
    (["--on", "yesterday"], "YYYY-MM-DD"),
])
def test_bad_input_exits_2_with_a_message(run, args, message):
    result = run("cost", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
