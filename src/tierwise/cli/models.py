"""``tierwise models``: the tier mapping, then every model in the catalog with its prices and limits."""

from __future__ import annotations

import datetime as _dt
import json
from decimal import Decimal
from typing import Any, Optional

import typer
from rich.table import Table

from . import app
from ._common import fail, parse_day, settings_from
from .report import new_console


def _usd(v: Decimal) -> str:
    return f"${v:,.3f}".rstrip("0").rstrip(".") if v % Decimal("0.01") else f"${v:,.2f}"


def _constraints(m: Any) -> list[str]:
    out = []
    if m.rejects_sampling_params:
        out.append("sampling params")
    if m.rejects_manual_thinking:
        out.append("manual thinking")
    if m.rejects_forced_tool_use:
        out.append("forced tool use")
    return out


def _status(m: Any) -> str:
    return "retired" if m.retired else "legacy" if m.legacy else "current"


def _context(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000:,}K" if n % 1000 == 0 else f"{n:,}"


@app.command()
def models(
    on: Optional[str] = typer.Option(None, "--on", help="Show the prices in force on this date, YYYY-MM-DD (default today)."),
    include_retired: bool = typer.Option(True, "--retired/--no-retired", help="Include models retired on Anthropic's API."),
    as_json: bool = typer.Option(False, "--json", help="Print the catalog as JSON."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Path to tierwise.toml."),
) -> None:
    """The tier mapping and the model catalog: prices per Mtok, limits, constraints, legacy/retired."""
    from ..errors import TierwiseError

    try:
        settings = settings_from(config)
    except TierwiseError as exc:
        fail(str(exc))
    when = parse_day(on)
    catalog = settings.catalog
    day = when or _dt.datetime.now(_dt.UTC).date()
    listed = [m for m in catalog.listed() if include_retired or not m.retired]
    tier_rank = {catalog.tiers[t]: i for i, t in enumerate(catalog.tier_order)}
    listed.sort(key=lambda m: (m.id not in tier_rank, tier_rank.get(m.id, 0), m.retired, m.legacy))

    if as_json:
        def price(m: Any) -> dict[str, Any]:
            p = m.price_at(day)
            rates = {k: str(getattr(p.rates, k)) for k in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")}
            if p.long_threshold is not None and p.long_rates is not None:
                rates["long_threshold"] = p.long_threshold
                rates["long"] = {k: str(getattr(p.long_rates, k)) for k in ("input", "output", "cache_write_5m",
                                                                             "cache_write_1h", "cache_read")}
            return {"effective": str(p.effective), **rates}

        typer.echo(json.dumps({
            "prices_on": str(day), "checked": catalog.checked, "default_tier": settings.default_tier,
            "tiers": [{"tier": t, "model": catalog.tiers[t]} for t in catalog.tier_order],
            "models": [{"id": m.id, "tier": catalog.tier_of(m.id), "family": m.family, "context_window": m.context_window,
                        "max_output": m.max_output, "status": _status(m), "constraints": _constraints(m),
                        "aliases": list(m.aliases), "notes": m.notes, "price_per_mtok": price(m)} for m in listed],
        }, indent=2))
        return

    console = new_console()
    tiers = Table(title="Tiers (capability profile → pinned model)", title_style="bold", header_style="bold cyan",
                  caption=f"Unlisted task types and unrouted requests go to the default tier, {settings.default_tier}.",
                  caption_justify="left")
    tiers.add_column("Tier", style="bold", no_wrap=True)
    tiers.add_column("Model", no_wrap=True)
    tiers.add_column("Input $/Mtok", justify="right", no_wrap=True)
    tiers.add_column("Output $/Mtok", justify="right", no_wrap=True)
    tiers.add_column("Context", justify="right", no_wrap=True)
    tiers.add_column("Task types in the registry")
    by_tier: dict[str, list[str]] = {}
    for task, tier in sorted(settings.registry.items()):
        by_tier.setdefault(tier, []).append(task)
    for t in catalog.tier_order:
        m = catalog.model_for_tier(t)
        p = m.price_at(day)
        name = t + (" (default)" if t == settings.default_tier else "")
        tiers.add_row(name, m.id, _usd(p.rates.input), _usd(p.rates.output), _context(m.context_window),
                      ", ".join(by_tier.get(t, [])) or "–")
    console.print(tiers)
    console.print()

    band_note = ("Long-prompt band: past that many prompt tokens (input + cache), the whole request, output "
                 "included, is billed at the band's input / output rates. Rejects: request parameters the model "
                 "refuses (tierwise adapts what it can when it routes there).")
    wide = console.width >= 170
    price_cols = ("Input", "Output", "5m write", "1h write", "Cache read") if wide else ("In", "Out", "Wr 5m", "Wr 1h", "Read")
    table = Table(title=f"Model catalog: USD per million tokens in force {day} (facts checked {catalog.checked or 'n/a'})",
                  title_style="bold", header_style="bold cyan", caption_justify="left", show_edge=wide,
                  caption=band_note if wide else None)
    if wide:
        table.add_column("Tier", style="bold", no_wrap=True)
    table.add_column("Model", no_wrap=True)
    if wide:
        table.add_column("Context", justify="right", no_wrap=True)
        table.add_column("Max out", justify="right", no_wrap=True)
    for name in price_cols:
        table.add_column(name, justify="right", no_wrap=True)
    if wide:
        table.add_column("Long-prompt band")
        table.add_column("Rejects")
    table.add_column("Status", no_wrap=wide)
    limits = Table(title="Limits and constraints", title_style="bold", header_style="bold cyan", caption=band_note,
                   caption_justify="left", show_edge=False)
    for name, kw in (("Model", {"no_wrap": True}), ("Context", {"justify": "right"}), ("Max out", {"justify": "right"}),
                     ("Long-prompt band", {}), ("Rejects", {})):
        limits.add_column(name, **kw)  # type: ignore[arg-type]
    for m in listed:
        p = m.price_at(day)
        r = p.rates
        band = "–"
        if p.long_threshold is not None and p.long_rates is not None:
            band = f"> {_context(p.long_threshold)}: {_usd(p.long_rates.input)} / {_usd(p.long_rates.output)}"
        status = _status(m)
        style = {"retired": "red", "legacy": "yellow"}.get(status, "green")
        notes = f" ({m.notes})" if m.notes else ""
        tier = catalog.tier_of(m.id)
        name = m.id
        prices = [_usd(r.input), _usd(r.output), _usd(r.cache_write_5m), _usd(r.cache_write_1h), _usd(r.cache_read)]
        constraints = ", ".join(_constraints(m)) or "–"
        row_style = "dim" if m.retired else None
        if wide:
            table.add_row(tier or "", name, _context(m.context_window), _context(m.max_output), *prices, band, constraints,
                          f"[{style}]{status}[/{style}]{notes}", style=row_style)
        else:
            table.add_row(name, *prices, f"[{style}]{status}[/{style}]{notes}", style=row_style)
            limits.add_row(m.id, _context(m.context_window), _context(m.max_output), band, constraints, style=row_style)
    console.print(table)
    if not wide:
        console.print()
        console.print(limits)
    changes = [(m.id, pr.effective) for m in listed for pr in m.prices[1:] if pr.effective > day]
    for mid, eff in changes:
        console.print(f"[yellow]{mid}: new prices take effect {eff}.[/yellow]")
