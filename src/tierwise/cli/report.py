"""``tierwise report``: spend, calls, latency and savings from the ledger, by tier, task, day or model.

Also holds the small rendering helpers the other reporting commands share (``fail``,
``new_console``, number formatting).
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Sequence

import typer
from rich.console import Console
from rich.table import Table

from . import app
from ._common import fail, settings_from

__all__ = ["report", "new_console", "fmt_int", "fmt_ms", "fmt_pct", "masked_url"]


# ---------------------------------------------------------------------------- shared helpers
def new_console() -> Console:
    """A console resolved now (so the terminal width, or ``$COLUMNS``, is read at run time)."""
    return Console(highlight=False)


def fmt_int(v: Any) -> str:
    return f"{int(v):,}" if v is not None else "–"


def fmt_ms(v: Any) -> str:
    return f"{float(v):,.0f}" if v is not None else "–"


def fmt_pct(v: Any) -> str:
    return f"{float(v):.1f}%" if v is not None else "–"


def masked_url(url: str) -> str:
    """The ledger URL without its password, for display."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a bad URL is reported elsewhere; never echo a secret
        return url.split("@")[-1]


# ---------------------------------------------------------------------------- report
_LABELS = {"tier": "Tier", "task": "Task type", "day": "Day (UTC)", "model": "Model", "router": "Router",
           "upstream": "Upstream", "requested_model": "Requested model", "batch": "Batch"}
_NONE = {"tier": "(not routed)", "task": "(no task type)", "model": "(none)", "router": "(none)",
         "upstream": "(none)", "requested_model": "(none)", "day": "(none)", "batch": "(none)"}


def _order(rows: list[dict[str, Any]], group: str, tier_order: Sequence[str]) -> list[dict[str, Any]]:
    if group == "tier":
        rank = {t: i for i, t in enumerate(tier_order)}
        return sorted(rows, key=lambda r: (r["tier"] is None, rank.get(r["tier"], len(rank)), str(r["tier"])))
    if group == "day":
        return sorted(rows, key=lambda r: (r["day"] is None, str(r["day"])))
    return sorted(rows, key=lambda r: (-r["cost_nanos"], str(r[group])))


def money_table(title: str, label: str, rows: list[tuple[str, dict[str, Any]]], total: dict[str, Any],
                default_label: str, caption: str | None = None, extra: str | None = None,
                latency: bool = True, ttft: bool = True, width: int = 200) -> Table:
    """The shared spend table: one line per group, a totals line, savings against the default tier.

    On a narrow terminal (``width`` < 150) token counts, the ``extra`` column, the default-tier cost
    and TTFT are left out, p50/p95 share a column, and errors show only when there are some.
    """
    from ..reports.spend import fmt_usd, usd_places

    values = [r["cost_usd"] for _, r in rows] + [total["cost_usd"], total["default_cost_usd"], total["savings_usd"]]
    places = usd_places(values)
    usd = lambda v: fmt_usd(v, places)  # noqa: E731
    wide = width >= 150
    any_errors = bool(total["errors"])

    def errors(r: dict[str, Any]) -> str:
        return f"[red]{fmt_int(r['errors'])}[/red]" if r["errors"] else "0"

    # (header, cell, column options)
    cols: list[tuple[str, Any, dict[str, Any]]] = [("Calls", lambda r: fmt_int(r["calls"]), {})]
    if wide or any_errors:
        cols.append(("Errors", errors, {}))
    if wide:
        cols += [("Input tok", lambda r: fmt_int(r["input_tokens"]), {}),
                 ("Output tok", lambda r: fmt_int(r["output_tokens"]), {}),
                 ("Cache tok", lambda r: fmt_int(r["cache_read_tokens"] + r["cache_write_tokens"]), {})]
    cols.append(("Spend", lambda r: usd(r["cost_usd"]), {"style": "bold"}))
    if wide:
        cols.append((f"All on {default_label}", lambda r: usd(r["default_cost_usd"]), {}))
    cols += [
             ("Saved", lambda r: usd(r["savings_usd"]), {"style": "green"}),
             ("Saved %", lambda r: fmt_pct(r["savings_pct"]), {"style": "green"})]
    if latency and wide:
        cols += [("p50 ms", lambda r: fmt_ms(r.get("latency_p50_ms")), {}),
                 ("p95 ms", lambda r: fmt_ms(r.get("latency_p95_ms")), {})]
    elif latency:
        cols.append(("p50/p95 ms", lambda r: f"{fmt_ms(r.get('latency_p50_ms'))}/{fmt_ms(r.get('latency_p95_ms'))}", {}))
    if latency:
        if ttft and wide:
            cols.append(("TTFT p50", lambda r: fmt_ms(r.get("ttft_p50_ms")), {}))
    show_extra = bool(extra) and wide
    if not wide:
        note = f"Saved: against the same calls all on {default_label}."
        caption = f"{caption} {note}" if caption else note
    table = Table(title=title, caption=caption, title_style="bold", caption_justify="left", header_style="bold cyan",
                  show_edge=wide)
    table.add_column(label, style="bold", no_wrap=True, max_width=32)
    if show_extra:
        table.add_column(extra, no_wrap=True, style="dim")
    for header, _, opts in cols:
        table.add_column(header, justify="right", no_wrap=True, **opts)

    def lead(name: str, r: dict[str, Any] | None) -> list[str]:
        return [name] + ([(r or {}).get("_extra") or ""] if show_extra else [])

    for name, r in rows:
        table.add_row(*lead(name, r), *[cell(r) for _, cell, _ in cols])
    table.add_section()
    table.add_row(*lead("Total", None), *[cell(total) for _, cell, _ in cols], style="bold")
    return table


@app.command()
def report(
    ledger_url: Optional[str] = typer.Option(None, "--ledger-url", help="sqlite:///path.db or postgresql://... (default: the configured ledger)."),
    by: Optional[list[str]] = typer.Option(None, "--by", help="tier, task, day or model (also router, upstream); repeat for several tables. Default: tier, task and day."),
    since: Optional[str] = typer.Option(None, "--since", help="First day to include, YYYY-MM-DD (UTC)."),
    until: Optional[str] = typer.Option(None, "--until", help="Last day to include, YYYY-MM-DD (UTC)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Path to tierwise.toml."),
) -> None:
    """Spend, calls and latency by tier, task and day, and what routing saved against the default tier."""
    import sqlalchemy as sa

    from ..errors import TierwiseError
    from ..ledger import make_engine
    from ..reports.spend import (
        GROUPS,
        fmt_usd,
        has_ledger,
        parse_day,
        savings_sentence,
        summarize,
        usd_places,
    )

    groups = list(by or ["tier", "task", "day"])
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        fail(f"--by {bad[0]!r}: choose from {', '.join(GROUPS)}")
    try:
        settings = settings_from(config, ledger={"url": ledger_url})
        since_day = parse_day(since, "--since") if since else None
        until_day = parse_day(until, "--until") if until else None
    except TierwiseError as exc:
        fail(str(exc))
    url = settings.ledger_url
    shown = masked_url(url)
    catalog = settings.catalog
    default_tier = settings.default_tier
    default_model = catalog.tiers[default_tier]
    console = new_console()

    def empty(reason: str) -> None:
        if as_json:
            typer.echo(json.dumps({"ledger": shown, "calls": 0, "message": reason}))
        else:
            console.print(f"[bold]No calls to report[/bold] in {shown}: {reason}")
            console.print("Start the proxy with [cyan]make run[/cyan] (or [cyan]tierwise serve[/cyan]) and send it "
                          "requests, or try [cyan]tierwise demo[/cyan].")
        raise typer.Exit(0)

    try:
        parsed = sa.engine.make_url(url.replace("postgres://", "postgresql://", 1))
    except sa.exc.ArgumentError:
        fail(f"--ledger-url: not a database URL: {shown!r} (try sqlite:///tierwise.db or postgresql://host/db)")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not os.path.exists(parsed.database):
        empty(f"the ledger file {parsed.database} does not exist yet.")
    engine = None
    try:
        engine = make_engine(url)
        if not has_ledger(engine):
            empty("the database has no ledger table yet.")
        window = {"since": since_day, "until": until_day}
        total_rows = summarize(engine, group_by=(), **window)
        if not total_rows:
            empty("the ledger is empty" + (" for that period." if since or until else "."))
        results = {g: summarize(engine, group_by=(g,), **window) for g in groups}
        batch_rows = [r for r in summarize(engine, group_by=("batch",), **window) if r["batch"]]
    except TierwiseError as exc:
        fail(str(exc))
    except sa.exc.SQLAlchemyError as exc:
        fail(f"cannot read the ledger at {shown}: {getattr(exc, 'orig', None) or type(exc).__name__}")
    finally:
        if engine is not None:
            engine.dispose()
    total = total_rows[0]
    period = ""
    if since_day or until_day:
        period = f" from {since_day or 'the start'} to {until_day or 'today'}"
    first = min(r["first_ts"] for r in total_rows)
    last = max(r["last_ts"] for r in total_rows)

    if as_json:
        sentence = savings_sentence(total, default_tier, default_model)
        payload = {"ledger": shown, "since": str(since_day) if since_day else None,
                   "until": str(until_day) if until_day else None, "default_tier": default_tier,
                   "default_model": default_model, "total": total,
                   "by": {g: _order(rows, g, catalog.tier_order) for g, rows in results.items()},
                   "batch": batch_rows[0] if batch_rows else None, "summary": sentence}
        typer.echo(json.dumps(payload, indent=2, default=str))
        return

    import datetime as dt

    span = (f"{dt.datetime.fromtimestamp(first, dt.UTC):%Y-%m-%d %H:%M} – "
            f"{dt.datetime.fromtimestamp(last, dt.UTC):%Y-%m-%d %H:%M} UTC")
    places = usd_places([total["cost_usd"], total["default_cost_usd"], total["savings_usd"]])
    sentence = savings_sentence(total, default_tier, default_model, fmt=lambda v: fmt_usd(v, places))
    console.print(f"[bold]tierwise report[/bold]{period}: {fmt_int(total['calls'])} calls, {span}")
    console.print(f"[dim]ledger: {shown}[/dim]")
    for g, rows in results.items():
        extra = "Model" if g == "tier" else None
        named = []
        for r in _order(rows, g, catalog.tier_order):
            name = r[g] if r[g] is not None else _NONE[g]
            if g == "batch":
                name = "Message Batches" if r[g] else "live calls"
            if extra:
                r = dict(r, _extra=catalog.tiers.get(r["tier"], "") if r["tier"] else "")
            named.append((str(name), r))
        table = money_table(f"Spend by {g}{period}", _LABELS[g], named, total, default_tier, extra=extra,
                            width=console.width)
        console.print()
        console.print(table)
    if batch_rows:
        b = batch_rows[0]
        console.print()
        console.print(f"Message Batches: {fmt_int(b['calls'])} result(s), {fmt_usd(b['cost_usd'], max(places, usd_places([b['cost_usd']])))} "
                      f"(priced at the batch discount, {float(catalog.batch_discount) * 100:.0f}% off; included above)")
    if total["unpriced_calls"]:
        console.print(f"[yellow]{total['unpriced_calls']:,} call(s) answered by models not in the catalog are not priced "
                      "and left out of the savings.[/yellow]")
    console.print()
    style = "bold green" if total["savings_usd"] >= 0 else "bold yellow"
    console.print(f"[{style}]{sentence}[/{style}]")
