"""``tierwise ab``: A/B tests of routing policies on live traffic, and their verdict."""

from __future__ import annotations

import json
from typing import Optional

import typer

from . import app
from ._common import console, settings_from

ab_app = typer.Typer(help="A/B test routing policies (registry versions, routers, thresholds) on live traffic.",
                     no_args_is_help=True)
app.add_typer(ab_app, name="ab")

_CONFIG = typer.Option(None, "--config", "-c", help="Path to tierwise.toml (the [ab] table is written there).")
_LEDGER = typer.Option(None, "--ledger-url", help="Ledger DB (default: ledger.url).")


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_sets(arms: list[str], sets: list[str]) -> dict:
    """``--arm A --arm B --set B.registry.draft_email=fast --set B.weight=2`` -> {arm: policy}."""
    policies: dict = {a: {} for a in arms}
    for s in sets:
        path, eq, value = s.partition("=")
        parts = path.strip().split(".")
        if not eq or len(parts) < 2:
            raise typer.BadParameter(f"--set {s!r}: expected ARM.key=value, e.g. B.registry.draft_email=fast")
        arm = parts[0]
        if arm not in policies:
            raise typer.BadParameter(f"--set {s!r}: arm {arm!r} is not one of --arm {', '.join(arms)}")
        node = policies[arm]
        for p in parts[1:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = _value(value.strip())
    return policies


@ab_app.command("start")
def start(
    name: str = typer.Argument(..., help="Experiment name, e.g. drafts-on-haiku."),
    arm: list[str] = typer.Option(..., "--arm", help="Arm names (two or more); the first is the control."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="ARM.key=value: registry.TASK, auto, options.K, default_tier, weight."),
    key: str = typer.Option("user", "--key", help="Assign by: user (metadata.user_id), session (x-tierwise-session), request."),
    config: Optional[str] = _CONFIG,
    ledger_url: Optional[str] = _LEDGER,
) -> None:
    """Start an experiment: writes [ab] to tierwise.toml (a running proxy picks it up) and records it."""
    import tomlkit

    from ..config import _validate
    from ..registry_history import _atomic_write, config_path_of, open_db, read_toml
    from ..reports.ab import record_experiment
    from ..routing.arms import validate_ab

    settings = settings_from(config, ledger={"url": ledger_url})
    policies = parse_sets(arm, set_ or [])
    raw = dict(settings.raw)
    raw["ab"] = {"enabled": True, "name": name, "key": key, "arms": policies}
    validate_ab(_validate(raw, settings.source))  # refuse a bad experiment before touching the file
    path = config_path_of(settings)
    doc = read_toml(path)
    table = tomlkit.table()
    table.add("enabled", True)
    table.add("name", name)
    table.add("key", key)
    arms_t = tomlkit.table()
    for a, pol in policies.items():
        t = tomlkit.table()
        for k, v in pol.items():
            t.add(k, v)
        arms_t.add(a, t)
    table.add("arms", arms_t)
    if "ab" in doc:
        del doc["ab"]
    doc.add("ab", table)
    _atomic_write(path, tomlkit.dumps(doc))
    engine = open_db(settings)
    record_experiment(engine, name, key, policies)
    console.print(f"experiment [bold]{name}[/bold] started in {path}: arms {', '.join(arm)} by {key}. "
                  f"A running proxy picks it up within monitor.interval seconds. Verdict: tierwise ab report {name}")


@ab_app.command("stop")
def stop(config: Optional[str] = _CONFIG, ledger_url: Optional[str] = _LEDGER) -> None:
    """Stop the running experiment (every request goes back to the plain configuration)."""
    from ..registry_history import _atomic_write, config_path_of, open_db, read_toml
    from ..reports.ab import end_experiment

    settings = settings_from(config, ledger={"url": ledger_url})
    path = config_path_of(settings)
    doc = read_toml(path)
    if "ab" not in doc or not doc["ab"].get("enabled"):
        console.print("no experiment is running")
        return
    name = str(doc["ab"].get("name"))
    doc["ab"]["enabled"] = False
    import tomlkit

    _atomic_write(path, tomlkit.dumps(doc))
    end_experiment(open_db(settings), name)
    console.print(f"experiment {name} stopped; its report stays: tierwise ab report {name}")


@ab_app.command("report")
def report(
    name: Optional[str] = typer.Argument(None, help="Experiment (default: the latest)."),
    as_json: bool = typer.Option(False, "--json"),
    confidence: float = typer.Option(0.95, "--confidence"),
    config: Optional[str] = _CONFIG,
    ledger_url: Optional[str] = _LEDGER,
) -> None:
    """Compare the arms: cost per call, latency, escalations, quality signal, with intervals and a verdict."""
    from rich.table import Table

    from ..evaluation.charts import fmt_usd
    from ..registry_history import open_db
    from ..reports.ab import ab_report

    if not 0.5 <= confidence < 1:
        raise typer.BadParameter("--confidence is between 0.5 and 1, e.g. 0.95")
    settings = settings_from(config, ledger={"url": ledger_url})
    rep = ab_report(open_db(settings), name, confidence=confidence)
    if as_json:
        typer.echo(json.dumps(rep, indent=2))
        return
    t = Table(title=f"A/B {rep['experiment']} ({confidence:.0%} intervals)")
    for col in ("arm", "calls", "cost/call", "CI", "p50", "p95", "escalated", "errors", "feedback", "bad"):
        t.add_column(col, justify="left" if col == "arm" else "right")
    for a in rep["arms"]:
        t.add_row(a["arm"] + (" (control)" if a["arm"] == rep["control"] else ""), f"{a['n']:,}",
                  fmt_usd(a["cost_per_call_usd"]), f"{fmt_usd(a['cost_ci'][0])}-{fmt_usd(a['cost_ci'][1])}",
                  "n/a" if a["p50_latency_ms"] is None else f"{a['p50_latency_ms']:,.0f} ms",
                  "n/a" if a["p95_latency_ms"] is None else f"{a['p95_latency_ms']:,.0f} ms",
                  f"{a['escalation_rate']:.1%}", f"{a['error_rate']:.1%}", str(a["feedback_n"]),
                  "n/a" if a["bad_rate"] is None else f"{a['bad_rate']:.1%}")
    console.print(t)
    for c in rep["comparisons"]:
        console.print(f"[bold]{c['verdict']}[/bold]", highlight=False)
