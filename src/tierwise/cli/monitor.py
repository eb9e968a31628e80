"""``tierwise monitor``: the error rate of each task type since its last registry change, alerts, revert."""

from __future__ import annotations

import time
from typing import Optional

import typer

from . import app
from ._common import console, settings_from

monitor_app = typer.Typer(help="Watch task types after registry changes; alert and revert when errors climb.",
                          no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")

_CONFIG = typer.Option(None, "--config", "-c", help="Path to tierwise.toml.")
_LEDGER = typer.Option(None, "--ledger-url", help="Ledger DB (default: ledger.url).")


def _monitor(config, ledger_url, margin, min_samples, webhook):
    from ..monitor import Monitor
    from ..registry_history import open_db

    if margin is not None and not 0 <= margin < 1:
        raise typer.BadParameter("--margin is a fraction from 0 to 1, e.g. 0.05 (5 points)")
    if min_samples is not None and min_samples < 1:
        raise typer.BadParameter("--min-samples must be at least 1")

    settings = settings_from(config, ledger={"url": ledger_url},
                             monitor={"margin": margin, "min_samples": min_samples, "webhook": webhook})
    m = Monitor(settings, open_db(settings))
    if settings.raw["shadow"]["enabled"]:  # the shadow loop's auto-apply, revert and scheduled learn
        from ..shadow.watch import ShadowWatch

        m.shadow = ShadowWatch(settings, m.engine, m.history)
    return m


def _show(m) -> None:
    rows = m.evaluate()
    if not rows:
        console.print("no registry changes recorded yet: nothing to compare (tierwise registry history)")
    for h in rows:
        mark = "[red]ALERT[/red]" if h.alert else "[green]ok[/green]   "
        console.print(f"{mark} {h.message}", highlight=False)


@monitor_app.command("status")
def status(config: Optional[str] = _CONFIG, ledger_url: Optional[str] = _LEDGER,
           margin: Optional[float] = typer.Option(None, "--margin"), min_samples: Optional[int] = typer.Option(None, "--min-samples")) -> None:
    """Each changed task type: error rate before and since its last change (no action taken)."""
    _show(_monitor(config, ledger_url, margin, min_samples, None))


@monitor_app.command("check")
def check(
    auto_revert: Optional[bool] = typer.Option(None, "--auto-revert/--no-auto-revert", help="Default: monitor.auto_revert."),
    margin: Optional[float] = typer.Option(None, "--margin", help="Allowed climb of the error rate (default 0.05)."),
    min_samples: Optional[int] = typer.Option(None, "--min-samples", help="Feedback needed since the change (default 30)."),
    webhook: Optional[str] = typer.Option(None, "--webhook", help="POST alerts (JSON) to this URL."),
    watch: float = typer.Option(0.0, "--watch", help="Repeat every N seconds (0: once)."),
    config: Optional[str] = _CONFIG,
    ledger_url: Optional[str] = _LEDGER,
) -> None:
    """Check once (or every --watch seconds); alert on climbing error rates and revert when asked."""
    m = _monitor(config, ledger_url, margin, min_samples, webhook)
    while True:
        _show(m)
        for a in m.check(auto_revert=auto_revert):
            console.print(f"[bold red]alert #{a['id']}[/bold red] {a['message']}", highlight=False)
        for a in (m.shadow.last if m.shadow is not None else ()):
            if "id" not in a:  # the shadow loop's registry moves and learns
                console.print(f"[bold]shadow[/bold] {a['message']}", highlight=False)
        if watch <= 0:
            break
        time.sleep(watch)
    t = getattr(m, "last_webhook", None)
    if t is not None:
        t.join(6)


@monitor_app.command("alerts")
def alerts(config: Optional[str] = _CONFIG, ledger_url: Optional[str] = _LEDGER) -> None:
    """Alerts raised so far."""
    import datetime as dt

    from ..monitor import list_alerts
    from ..registry_history import open_db

    settings = settings_from(config, ledger={"url": ledger_url})
    rows = list_alerts(open_db(settings))
    if not rows:
        console.print("no alerts")
    for a in rows:
        when = dt.datetime.fromtimestamp(a["ts"]).strftime("%Y-%m-%d %H:%M")
        console.print(f"#{a['id']} {when} {'REVERTED ' if a['reverted'] else ''}{a['message']}", highlight=False)
