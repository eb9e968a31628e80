"""``tierwise registry``: change a task type's tier with a reason, list the history, undo a change."""

from __future__ import annotations

import datetime as dt
from typing import Optional

import typer

from . import app
from ._common import console, settings_from

registry_app = typer.Typer(help="The task-type registry: set entries, see who changed what and why, undo.",
                           no_args_is_help=True)
app.add_typer(registry_app, name="registry")

_CONFIG = typer.Option(None, "--config", "-c", help="Path to tierwise.toml (edited in place, comments kept).")
_LEDGER = typer.Option(None, "--ledger-url", help="Ledger DB holding the history (default: ledger.url).")


def _history(config: Optional[str], ledger_url: Optional[str]):
    from ..registry_history import RegistryHistory, open_db

    settings = settings_from(config, ledger={"url": ledger_url})
    return RegistryHistory(settings, open_db(settings))


@registry_app.command("show")
def show(config: Optional[str] = _CONFIG, ledger_url: Optional[str] = _LEDGER) -> None:
    """The registry in force (tierwise.toml over the defaults)."""
    h = _history(config, ledger_url)
    for task, tier in sorted(h.current().items()):
        console.print(f"{task:<28} {tier}")
    console.print(f"(anything else goes to the default tier, {h.settings.default_tier})")


@registry_app.command("set")
def set_cmd(
    task: str = typer.Argument(..., help="Task type, e.g. summarize_short."),
    tier: str = typer.Argument(..., help="Tier (fast, balanced, deep, frontier) or 'none' to remove the entry."),
    why: str = typer.Option(..., "--why", help="Why: recorded in the history."),
    actor: Optional[str] = typer.Option(None, "--actor", help="Who (default: your user name)."),
    config: Optional[str] = _CONFIG,
    ledger_url: Optional[str] = _LEDGER,
) -> None:
    """Set TASK to TIER in tierwise.toml and record it (a running proxy picks it up within monitor.interval)."""
    h = _history(config, ledger_url)
    ch = h.set(task, None if tier.lower() == "none" else tier, reason=why, actor=actor, source="cli")
    if ch is None:
        console.print(f"{task} is already {tier}: nothing changed")
        return
    console.print(f"#{ch.id} {ch.describe()} in {h.path}  (undo: tierwise registry undo {ch.id})")


@registry_app.command("history")
def history(
    task: Optional[str] = typer.Argument(None, help="Only this task type."),
    limit: int = typer.Option(30, "--limit", "-n"),
    config: Optional[str] = _CONFIG,
    ledger_url: Optional[str] = _LEDGER,
) -> None:
    """Every registry change: when, what, who, and why."""
    h = _history(config, ledger_url)
    changes = h.list(task, limit)
    if not changes:
        console.print("no registry changes recorded yet")
    for ch in changes:
        when = dt.datetime.fromtimestamp(ch.ts).strftime("%Y-%m-%d %H:%M:%S")
        undo = f" (undoes #{ch.undoes})" if ch.undoes else ""
        console.print(f"#{ch.id:<4} {when}  {ch.describe():<40} by {ch.actor} via {ch.source}{undo}\n      {ch.reason or ''}",
                      markup=False, highlight=False)


@registry_app.command("undo")
def undo(
    change_id: int = typer.Argument(..., help="The change to undo (see tierwise registry history)."),
    why: Optional[str] = typer.Option(None, "--why", help="Why (default: 'undo of change #ID')."),
    actor: Optional[str] = typer.Option(None, "--actor"),
    config: Optional[str] = _CONFIG,
    ledger_url: Optional[str] = _LEDGER,
) -> None:
    """Restore the entry a change replaced: one command to revert."""
    h = _history(config, ledger_url)
    ch = h.undo(change_id, reason=why, actor=actor)
    if ch is None:
        console.print("nothing to undo: the entry already has its earlier value")
        return
    console.print(f"#{ch.id} {ch.describe()} (undoes #{change_id})")
