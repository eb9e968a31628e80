"""Golden cost figures, worked by hand from the 2026-11-21 price table."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tierwise.catalog import load_catalog
from tierwise.cost import Usage, cost_nanos, cost_usd


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def test_plain_haiku_and_sonnet(cat):
    u = Usage(input_tokens=10_000, output_tokens=10_000)
    assert cost_usd(cat, "claude-haiku-5-5", u) == Decimal("0.006")     # (0.10 + 0.50) / 100
    assert cost_usd(cat, "claude-sonnet-5-5", u) == Decimal("0.12")     # (2 + 10) / 100: 20x Haiku
    assert cost_usd(cat, "claude-opus-5-5", u) == Decimal("0.24")
    assert cost_usd(cat, "claude-fable-5-1", u) == Decimal("0.6")


def test_cache_tokens_priced_per_kind(cat):
    # 1,000 input, 500 output, 2,000 5-minute writes, 3,000 1-hour writes, 10,000 cache reads on Opus 5.5
    u = Usage(input_tokens=1000, output_tokens=500, cache_write_5m_tokens=2000, cache_write_1h_tokens=3000,
              cache_read_tokens=10_000)
    # 1000*4 + 500*20 + 2000*5 + 3000*8 + 10000*0.2 = 4000+10000+10000+24000+2000 = 50,000 USD/Mtok-tokens
    assert cost_nanos(cat.get("claude-opus-5-5"), u) == 50_000 * 1000
    assert cost_usd(cat, "claude-opus-5-5", u) == Decimal("0.05")


def test_usage_from_api_splits_cache_writes():
    u = Usage.from_api({"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 300,
                        "cache_read_input_tokens": 40,
                        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}})
    assert (u.cache_write_5m_tokens, u.cache_write_1h_tokens, u.cache_read_tokens) == (100, 200, 40)
    # no breakdown: all writes are 5-minute writes
    assert Usage.from_api({"cache_creation_input_tokens": 300}).cache_write_5m_tokens == 300
    # stream: message_delta's cumulative counts replace message_start's
    merged = Usage.from_api({"input_tokens": 31, "output_tokens": 1}).merged({"output_tokens": 547})
    assert (merged.input_tokens, merged.output_tokens) == (31, 547)


def test_haiku_long_prompt_band_bills_whole_request(cat):
    short = Usage(input_tokens=100_000, output_tokens=1000)
    long = Usage(input_tokens=90_000, output_tokens=1000, cache_read_tokens=10_001)  # prompt = 100,001 tokens
    assert cost_usd(cat, "claude-haiku-5-5", short) == Decimal("0.0105")  # 100000*0.10 + 1000*0.50 per M
    # band: 90000*0.50 + 1000*2.50 + 10001*0.05 = 45000 + 2500 + 500.05 per M
    assert cost_usd(cat, "claude-haiku-5-5", long) == Decimal("0.04800005")


def test_price_history_keeps_old_rows_old(cat):
    u = Usage(cache_read_tokens=1_000_000)
    sonnet = cat.get("claude-sonnet-5-5")
    assert cost_nanos(sonnet, u, when=dt.date(2026, 10, 6)) == 200_000_000   # $0.20 before 2026-10-07
    assert cost_nanos(sonnet, u, when=dt.date(2026, 10, 7)) == 100_000_000   # $0.10 from then on


def test_batch_discount_halves(cat):
    u = Usage(input_tokens=2_000_000, output_tokens=1_000_000)
    assert cost_usd(cat, "claude-sonnet-5-5", u, batch=True) == Decimal("7")  # (4 + 10) / 2


def test_legacy_and_dated_ids_are_priced(cat):
    u = Usage(input_tokens=1_000_000)
    assert cost_usd(cat, "claude-haiku-4-5-20251001", u) == Decimal("1")
    assert cost_usd(cat, "claude-opus-4-1", u) == Decimal("15")
    assert cost_usd(cat, "claude-unknown-1", u) is None
