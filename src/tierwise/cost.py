"""Exact cost of a call from its usage block.

Costs are computed with ``Decimal`` and stored as integer nano-dollars (1e-9 USD):
every catalog price has at most three decimals per million tokens, so a token costs a
whole number of nano-dollars and sums never drift.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .catalog import Catalog, Model

__all__ = ["Usage", "price", "cost_nanos", "cost_usd", "utc_day", "NANO"]

NANO = Decimal("1e9")


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        """Everything the model read: input, cache reads and cache writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @classmethod
    def from_api(cls, usage: Mapping[str, Any] | None) -> "Usage":
        """From an Anthropic ``usage`` object (non-streaming, or merged stream usage)."""
        if not usage:
            return cls()
        get = usage.get
        created = int(get("cache_creation_input_tokens") or 0)
        detail = get("cache_creation")
        if detail and (type(detail) is dict or isinstance(detail, Mapping)):  # the ABC check only off the JSON path
            w5 = int(detail.get("ephemeral_5m_input_tokens") or 0)
            w1 = int(detail.get("ephemeral_1h_input_tokens") or 0)
        else:
            w5 = w1 = 0
        if w5 + w1 != created:
            # No (or inconsistent) breakdown: bill the unexplained part as 5-minute writes.
            w5 = max(created - w1, 0)
        return cls(
            input_tokens=int(get("input_tokens") or 0),
            output_tokens=int(get("output_tokens") or 0),
            cache_write_5m_tokens=w5,
            cache_write_1h_tokens=w1,
            cache_read_tokens=int(get("cache_read_input_tokens") or 0),
        )

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_write_5m_tokens + other.cache_write_5m_tokens,
                     self.cache_write_1h_tokens + other.cache_write_1h_tokens,
                     self.cache_read_tokens + other.cache_read_tokens)

    def merged(self, update: Mapping[str, Any]) -> "Usage":
        """Stream usage: ``message_delta`` carries cumulative counts that replace ``message_start``'s.

        What ``from_api`` makes of this usage with ``update``'s counts laid over it, computed directly:
        a count ``update`` names replaces this one; its ``cache_creation`` breakdown replaces this one's,
        and a new ``cache_creation_input_tokens`` without a breakdown drops the old breakdown."""
        get = update.get
        v = get("input_tokens")
        inp = self.input_tokens if v is None else int(v or 0)
        v = get("output_tokens")
        out = self.output_tokens if v is None else int(v or 0)
        v = get("cache_read_input_tokens")
        read = self.cache_read_tokens if v is None else int(v or 0)
        v = get("cache_creation_input_tokens")
        created = self.cache_write_5m_tokens + self.cache_write_1h_tokens if v is None else int(v or 0)
        detail = get("cache_creation")
        if isinstance(detail, Mapping):
            if detail:
                w5 = int(detail.get("ephemeral_5m_input_tokens") or 0)
                w1 = int(detail.get("ephemeral_1h_input_tokens") or 0)
            else:
                w5 = w1 = 0
        elif v is not None:  # a new total without a breakdown
            w5 = w1 = 0
        else:
            w5, w1 = self.cache_write_5m_tokens, self.cache_write_1h_tokens
        if w5 + w1 != created:
            w5 = max(created - w1, 0)  # as from_api: the unexplained part billed as 5-minute writes
        return Usage(inp, out, w5, w1, read)


def cost_nanos(model: Model, usage: Usage, *, when: _dt.datetime | _dt.date | None = None,
               batch: bool = False, batch_discount: Decimal = Decimal("0.5")) -> int:
    """Cost of ``usage`` on ``model`` in nano-USD, with the price in force ``when``.

    Long-prompt bands (Haiku 5.5 past 100,000 prompt tokens) bill the whole request,
    output included, at the band's rates. The batch discount applies to every kind of token.
    """
    rates = model.price_at(when).rates_for(usage.prompt_tokens)
    p_in, p_out, p_w5, p_w1, p_read = rates.pico
    pico = (usage.input_tokens * p_in + usage.output_tokens * p_out + usage.cache_write_5m_tokens * p_w5
            + usage.cache_write_1h_tokens * p_w1 + usage.cache_read_tokens * p_read)
    if batch:
        return int((Decimal(pico) * (Decimal(1) - batch_discount) / 1000).to_integral_value())
    return (pico + 500) // 1000  # pico -> nano, half up


def price(catalog: Catalog, model_id: str | None, usage: Usage | None, *, day: _dt.date | None,
          batch: bool = False) -> int | None:
    """What ``usage`` on ``model_id`` cost, in nano-USD, at the price in force on ``day`` (the call's UTC
    day; None: today), with the catalog's batch discount when ``batch``.

    The one place tierwise prices a call. A model the catalog does not know is **unpriced: None**
    (never 0: nothing says it was free); a caller that must add it to a spend counts it as 0
    explicitly (``or 0``)."""
    if model_id is None or usage is None:
        return None
    model = catalog.get(model_id)
    if model is None:
        return None
    return cost_nanos(model, usage, when=day, batch=batch, batch_discount=catalog.batch_discount)


def cost_usd(catalog: Catalog, model_id: str, usage: Usage, *, when: Any = None, batch: bool = False) -> Decimal | None:
    """Cost in USD, or None when the model is not in the catalog."""
    nanos = price(catalog, model_id, usage, day=when, batch=batch)
    return None if nanos is None else Decimal(nanos) / NANO


_DAY: list[Any] = [None, None, ""]


def utc_day(wall: float) -> tuple[_dt.date, str]:
    """The UTC date of ``wall`` (a ``time.time()``) and its ISO string, cached for the current day."""
    n = int(wall // 86400)
    cached = _DAY
    if cached[0] != n:
        d = _dt.datetime.fromtimestamp(wall, _dt.UTC).date()
        cached[:] = [n, d, d.isoformat()]
    day: _dt.date = cached[1]
    iso: str = cached[2]
    return day, iso
