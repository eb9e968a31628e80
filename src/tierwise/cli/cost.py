"""``tierwise cost``: the seeds' monthly cost matrix for a workload, on each tier and on a routed mix."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table

from . import app
from ._common import fail, parse_day, settings_from
from .report import fmt_int, fmt_pct, new_console


@app.command()
def cost(
    calls_per_day: int = typer.Option(1000, "--calls-per-day", help="Calls per day (the seed example: 1000)."),
    input_tokens: int = typer.Option(500, "--input-tokens", help="Average input tokens per call (seed: 500)."),
    output_tokens: int = typer.Option(200, "--output-tokens", help="Average output tokens per call (seed: 200)."),
    mix: str = typer.Option("70/30", "--mix", help="Share of calls per tier in --tiers order, e.g. 70/30."),
    tiers: str = typer.Option("fast,balanced", "--tiers", help="Tiers the mix splits calls between, comma-separated."),
    days: int = typer.Option(30, "--days", help="Days in the month."),
    prices: str = typer.Option("catalog", "--prices", help="catalog (current prices, the default) or seed (the seed article's out-of-date prices)."),
    on: Optional[str] = typer.Option(None, "--on", help="Price on this date, YYYY-MM-DD (catalog prices; default today)."),
    as_json: bool = typer.Option(False, "--json", help="Print the matrix as JSON."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Path to tierwise.toml."),
) -> None:
    """What a workload costs per month on each tier and on a routed mix, and what the mix saves."""
    from ..costmatrix import (
        SEED_PRICES,
        SEED_PRICES_LABEL,
        catalog_prices,
        monthly_matrix,
        parse_mix,
        parse_tiers,
        seed_prices,
    )
    from ..errors import TierwiseError
    from ..reports.spend import fmt_usd

    if prices not in ("catalog", "seed"):
        fail(f"--prices {prices!r}: choose catalog or seed")
    try:
        settings = settings_from(config)
        catalog = settings.catalog
        when = parse_day(on)
        known = list(SEED_PRICES) if prices == "seed" else catalog.tier_order
        tier_list = parse_tiers(tiers, known)
        shares = parse_mix(mix, len(tier_list))
        default = settings.default_tier
        wanted = tier_list + ([default] if default not in tier_list else [])
        table_prices = (seed_prices(wanted) if prices == "seed"
                        else catalog_prices(catalog, wanted, input_tokens=input_tokens, when=when))
        matrix = monthly_matrix(calls_per_day=calls_per_day, input_tokens=input_tokens, output_tokens=output_tokens,
                                days=days, tiers=tier_list, mix=shares, prices=table_prices, default_tier=default,
                                source=prices)
    except TierwiseError as exc:
        fail(str(exc))

    source = SEED_PRICES_LABEL[0].upper() + SEED_PRICES_LABEL[1:] if prices == "seed" else (
        f"Catalog prices in force {when or 'today'} (catalog checked {catalog.checked or 'n/a'})")
    if as_json:
        typer.echo(json.dumps({
            "calls_per_day": calls_per_day, "input_tokens": input_tokens, "output_tokens": output_tokens, "days": days,
            "prices": prices, "price_source": source, "default_tier": default,
            "per_mtok": {t: {"model": p.model, "input": str(p.input), "output": str(p.output)} for t, p in table_prices.items()},
            "rows": [{"label": r.label, "tier": r.tier, "model": r.model, "monthly_usd": str(r.monthly_usd),
                      "savings_usd": str(r.savings_usd), "savings_pct": None if r.savings_pct is None else str(r.savings_pct),
                      "yearly_savings_usd": str(r.yearly_savings_usd), "is_mix": r.is_mix, "is_default": r.is_default}
                     for r in matrix.rows],
        }, indent=2))
        return

    console = new_console()
    month_in = input_tokens * matrix.calls
    month_out = output_tokens * matrix.calls
    title = (f"Monthly cost: {fmt_int(calls_per_day)} calls/day × {days} days, "
             f"{fmt_int(input_tokens)} in / {fmt_int(output_tokens)} out per call")
    price_table = Table(title="Prices (USD per million tokens)", title_style="bold", header_style="bold cyan",
                        show_edge=False, caption=source, caption_justify="left")
    price_table.add_column("Tier", style="bold", no_wrap=True)
    price_table.add_column("Model")
    price_table.add_column("Input", justify="right", no_wrap=True)
    price_table.add_column("Output", justify="right", no_wrap=True)
    for t, p in table_prices.items():
        price_table.add_row(t + (" (baseline)" if t == default else ""), p.model, fmt_usd(p.input), fmt_usd(p.output))
    table = Table(title=title, title_style="bold", header_style="bold cyan", caption_justify="left", show_edge=False,
                  caption=f"{fmt_int(month_in)} input and {fmt_int(month_out)} output tokens a month; "
                          f"savings against sending everything to {default}.")
    table.add_column("Routing", style="bold")
    table.add_column("Per month", justify="right", no_wrap=True, style="bold")
    table.add_column("Saved/month", justify="right", no_wrap=True, style="green")
    table.add_column("Saved %", justify="right", no_wrap=True, style="green")
    table.add_column("Saved/year", justify="right", no_wrap=True, style="green")
    for r in matrix.rows:
        if r.is_mix:
            table.add_section()
        label = r.label + (" (baseline)" if r.is_default else "")
        table.add_row(label, fmt_usd(r.monthly_usd), fmt_usd(r.savings_usd), fmt_pct(r.savings_pct),
                      fmt_usd(r.yearly_savings_usd), style="bold" if r.is_mix else None)
    console.print(price_table)
    console.print()
    console.print(table)
    console.print()
    m, base = matrix.mix, matrix.baseline
    verdict = "saves" if m.savings_usd >= 0 else "costs"
    amount = abs(m.savings_usd)
    console.print(f"[bold green]{m.label} {verdict} {fmt_usd(amount)}/month ({fmt_pct(abs(m.savings_pct or 0))}), "
                  f"{fmt_usd(amount * 12)}/year, against sending everything to {base.tier}/{base.model}"
                  f"{'' if verdict == 'saves' else ' more'}.[/bold green]")
