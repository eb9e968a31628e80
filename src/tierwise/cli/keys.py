"""``tierwise keys``: create, list and revoke proxy API keys (stored hashed in the ledger database)."""

from __future__ import annotations

from typing import Optional

import typer

from . import app
from ._common import console, settings_from

keys_app = typer.Typer(help="Proxy API keys: who may call the proxy, which tiers, how fast, how much.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _store(config: Optional[str], ledger_url: Optional[str]):
    from ..admission.keys import KeyStore
    from ..ledger import make_engine
    from ..ledger.schema import migrate

    settings = settings_from(config, ledger={"url": ledger_url})
    engine = make_engine(settings.ledger_url)
    migrate(engine)
    return settings, KeyStore(engine)


def _split(value: Optional[str]) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@keys_app.command("create")
def create(
    name: str = typer.Argument(..., help="A name for the key (who or what uses it)."),
    tiers: Optional[str] = typer.Option(None, "--tiers", help="Allowed tiers, comma-separated (default: all), e.g. fast,balanced."),
    deny: Optional[str] = typer.Option(None, "--deny", help="Denied tiers, comma-separated."),
    rpm: Optional[int] = typer.Option(None, "--rpm", help="Requests per minute allowed."),
    budget: Optional[str] = typer.Option(None, "--budget", help="USD per UTC day, e.g. 5 or 0.25."),
    role: str = typer.Option("caller", "--role", help="caller (the API routes) or operator (also the dashboard, "
                             "/metrics, /openapi.json, the task list, feedback on any request)."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Path to tierwise.toml."),
    ledger_url: Optional[str] = typer.Option(None, "--ledger-url", help="sqlite:///path.db or postgresql://..."),
) -> None:
    """Create a key. It is printed once and stored only as a hash."""
    settings, store = _store(config, ledger_url)
    rec, key = store.create(name, allow=_split(tiers) or None, deny=_split(deny), rpm=rpm, budget_usd=budget,
                            tiers=settings.catalog.tiers, role=role)
    console.print(f"created {rec.role} key {rec.id} ({rec.name}); tiers: {','.join(sorted(rec.allow)) if rec.allow else 'all'}"
                  f"{'; deny: ' + ','.join(sorted(rec.deny)) if rec.deny else ''}"
                  f"{'; rpm: ' + str(rec.rpm) if rec.rpm else ''}"
                  f"{'; budget: $' + str(budget) + '/day' if budget else ''}")
    console.print("the key (shown once, store it now):")
    typer.echo(key)


@keys_app.command("list")
def list_keys(
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Path to tierwise.toml."),
    ledger_url: Optional[str] = typer.Option(None, "--ledger-url", help="sqlite:///path.db or postgresql://..."),
) -> None:
    """List keys (ids, names, prefixes and limits; never the keys)."""
    _, store = _store(config, ledger_url)
    for rec in store.list():
        p = rec.public()
        console.print(f"{p['id']}  {p['prefix']}…  {p['name']}  role={p['role']}  tiers={','.join(p['allow']) if p['allow'] else 'all'}"
                      f"{' deny=' + ','.join(p['deny']) if p['deny'] else ''}  rpm={p['rpm'] or '-'}  "
                      f"budget/day={p['budget_usd_per_day'] or '-'}{'  REVOKED' if p['revoked'] else ''}")


@keys_app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="The key id (key_xxxxxxxx)."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Path to tierwise.toml."),
    ledger_url: Optional[str] = typer.Option(None, "--ledger-url", help="sqlite:///path.db or postgresql://..."),
) -> None:
    """Revoke a key (refused on every replica at most keys.refresh_interval seconds later)."""
    _, store = _store(config, ledger_url)
    if not store.revoke(key_id):
        console.print(f"no active key {key_id}")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")
