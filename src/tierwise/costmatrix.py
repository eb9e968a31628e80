"""The seeds' cost matrix: what a workload costs per month on each tier, and on a routed mix.

A workload is ``calls_per_day`` calls of ``input_tokens`` in and ``output_tokens`` out, for
``days`` days. Each tier gets an "everything on this tier" row; the mix row splits the calls
between the chosen tiers (``70/30``) and costs the weighted sum. Savings are measured against
sending everything to the default tier (``balanced``, the seeds' "Sonnet as safe default").

Prices come from the catalog (the default; long-prompt bands apply) or from ``SEED_PRICES``:
the seed article's own mid-2026 figures, kept so its worked example can be reproduced exactly.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from .catalog import Catalog
from .errors import TierwiseError

__all__ = [
    "CostMatrixError",
    "TierPrice",
    "MatrixRow",
    "Matrix",
    "SEED_PRICES",
    "SEED_PRICES_LABEL",
    "seed_prices",
    "catalog_prices",
    "parse_mix",
    "parse_tiers",
    "monthly_matrix",
]

MTOK = Decimal(1_000_000)
HUNDRED = Decimal(100)


class CostMatrixError(TierwiseError):
    """A cost-matrix input is wrong; the message says which and how."""


@dataclass(frozen=True, slots=True)
class TierPrice:
    """USD per million tokens for one tier, and where the figure comes from."""

    tier: str
    model: str
    input: Decimal
    output: Decimal

    def per_call(self, input_tokens: int, output_tokens: int) -> Decimal:
        return (input_tokens * self.input + output_tokens * self.output) / MTOK


# OUT OF DATE ON PURPOSE: the prices the seed article quotes ("as of mid-2026"), by tier.
# They reproduce its worked example (all Haiku $36/mo, all Sonnet $135/mo, 70/30 about $65/mo
# for 1,000 calls/day of 500 in / 200 out). Current prices live in data/models.toml.
SEED_PRICES_LABEL = "the seed article's mid-2026 prices (out of date; for reproducing its example)"
SEED_PRICES: dict[str, TierPrice] = {
    "fast": TierPrice("fast", "claude-haiku-4-5 (seed price)", Decimal("0.80"), Decimal("4")),
    "balanced": TierPrice("balanced", "claude-sonnet-4-6 (seed price)", Decimal("3"), Decimal("15")),
    "deep": TierPrice("deep", "claude-opus (seed price)", Decimal("15"), Decimal("75")),
}


def seed_prices(tiers: Sequence[str]) -> dict[str, TierPrice]:
    missing = [t for t in tiers if t not in SEED_PRICES]
    if missing:
        raise CostMatrixError(f"--prices seed has no price for tier(s) {', '.join(missing)} "
                              f"(the seed only prices: {', '.join(SEED_PRICES)}); use --prices catalog")
    return {t: SEED_PRICES[t] for t in tiers}


def catalog_prices(catalog: Catalog, tiers: Sequence[str], *, input_tokens: int = 0,
                   when: _dt.date | None = None) -> dict[str, TierPrice]:
    """Each tier's model's prices in force ``when`` (today by default), long-prompt band applied."""
    out: dict[str, TierPrice] = {}
    for t in tiers:
        if t not in catalog.tiers:
            raise CostMatrixError(f"unknown tier {t!r} (tiers: {', '.join(catalog.tier_order)})")
        model = catalog.model_for_tier(t)
        rates = model.price_at(when).rates_for(input_tokens)
        out[t] = TierPrice(t, model.id, rates.input, rates.output)
    return out


def parse_tiers(text: str, known: Sequence[str]) -> list[str]:
    tiers = [p.strip() for p in text.split(",") if p.strip()]
    if not tiers:
        raise CostMatrixError("--tiers: name at least one tier, e.g. --tiers fast,balanced")
    unknown = [t for t in tiers if t not in known]
    if unknown:
        raise CostMatrixError(f"--tiers: unknown tier(s) {', '.join(unknown)} (tiers: {', '.join(known)})")
    dupes = sorted({t for t in tiers if tiers.count(t) > 1})
    if dupes:
        raise CostMatrixError(f"--tiers: tier(s) listed twice: {', '.join(dupes)}")
    return tiers


_PART = re.compile(r"^\d+(\.\d+)?$")


def parse_mix(text: str, n_tiers: int) -> list[Decimal]:
    """``"70/30"`` -> ``[0.7, 0.3]``: one percentage per tier, summing to 100."""
    parts = [p.strip() for p in re.split(r"[/,:]", text)]
    if not all(_PART.match(p) for p in parts):
        raise CostMatrixError(f"--mix {text!r}: expected percentages separated by '/', e.g. 70/30")
    if len(parts) != n_tiers:
        raise CostMatrixError(f"--mix {text!r} has {len(parts)} part(s) but --tiers names {n_tiers} tier(s): "
                              "give one percentage per tier")
    shares = [Decimal(p) for p in parts]
    total = sum(shares, Decimal(0))
    if total != HUNDRED:
        raise CostMatrixError(f"--mix {text!r} sums to {total}%, not 100%")
    return [s / HUNDRED for s in shares]


@dataclass(frozen=True, slots=True)
class MatrixRow:
    label: str
    tier: str | None           # None for the mix row
    model: str
    share: Decimal             # fraction of calls (1 for an all-on-one-tier row)
    monthly_usd: Decimal
    savings_usd: Decimal       # against all on the default tier
    savings_pct: Decimal | None
    is_default: bool = False
    is_mix: bool = False

    @property
    def yearly_savings_usd(self) -> Decimal:
        return self.savings_usd * 12


@dataclass(frozen=True, slots=True)
class Matrix:
    calls_per_day: int
    input_tokens: int
    output_tokens: int
    days: int
    default_tier: str
    rows: list[MatrixRow]
    prices: str                # "catalog" or "seed"

    @property
    def calls(self) -> int:
        return self.calls_per_day * self.days

    @property
    def mix(self) -> MatrixRow:
        return next(r for r in self.rows if r.is_mix)

    @property
    def baseline(self) -> MatrixRow:
        return next(r for r in self.rows if r.is_default)

    def by_tier(self, tier: str) -> MatrixRow:
        return next(r for r in self.rows if r.tier == tier and not r.is_mix)


def monthly_matrix(*, calls_per_day: int, input_tokens: int, output_tokens: int, days: int,
                   tiers: Sequence[str], mix: Sequence[Decimal], prices: dict[str, TierPrice],
                   default_tier: str, source: str = "catalog") -> Matrix:
    """All-on-each-tier rows (the default tier added as the baseline when not listed), then the mix row."""
    for name, value, low in (("--calls-per-day", calls_per_day, 1), ("--input-tokens", input_tokens, 0),
                             ("--output-tokens", output_tokens, 0), ("--days", days, 1)):
        if value < low:
            raise CostMatrixError(f"{name} must be at least {low} (got {value})")
    if len(mix) != len(tiers):
        raise CostMatrixError(f"the mix has {len(mix)} part(s) for {len(tiers)} tier(s)")
    if default_tier not in prices:
        raise CostMatrixError(f"no price for the default tier {default_tier!r}")
    calls = calls_per_day * days
    monthly = {t: p.per_call(input_tokens, output_tokens) * calls for t, p in prices.items()}
    base = monthly[default_tier]

    def saving(cost: Decimal) -> tuple[Decimal, Decimal | None]:
        s = base - cost
        return s, (s / base * HUNDRED if base else None)

    order = list(tiers) + ([default_tier] if default_tier not in tiers else [])
    rows: list[MatrixRow] = []
    for t in order:
        s, pct = saving(monthly[t])
        rows.append(MatrixRow(label=f"All {t}", tier=t, model=prices[t].model, share=Decimal(1),
                              monthly_usd=monthly[t], savings_usd=s, savings_pct=pct, is_default=t == default_tier))
    mixed = sum((share * monthly[t] for t, share in zip(tiers, mix)), Decimal(0))
    s, pct = saving(mixed)
    label = "Mix " + " / ".join(f"{(share * HUNDRED).normalize():f}% {t}" for t, share in zip(tiers, mix))
    rows.append(MatrixRow(label=label, tier=None, model=" + ".join(prices[t].model for t in tiers),
                          share=Decimal(1), monthly_usd=mixed, savings_usd=s, savings_pct=pct, is_mix=True))
    return Matrix(calls_per_day=calls_per_day, input_tokens=input_tokens, output_tokens=output_tokens, days=days,
                  default_tier=default_tier, rows=rows, prices=source)
