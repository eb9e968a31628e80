"""``tierwise shadow report`` / ``tierwise shadow export`` and ``tierwise learn``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from . import app
from ._common import console, fail, settings_from

shadow_app = typer.Typer(help="Shadow evaluation of live traffic: verdicts per task type, outcomes.", no_args_is_help=True)
app.add_typer(shadow_app, name="shadow")


def _open(config: Optional[str], ledger_url: Optional[str]):  # type: ignore[no-untyped-def]
    from ..registry_history import open_db

    settings = settings_from(config, ledger={"url": ledger_url})
    return settings, open_db(settings)


_VERDICT = {"cheap": "[green]cheap tier[/green]", "strong": "[red]stronger tier[/red]", "review": "[yellow]review[/yellow]",
            "collecting": "[dim]collecting[/dim]"}


@shadow_app.command("report")
def report(
    config: Optional[str] = typer.Option(None, "--config", "-c", help="tierwise.toml"),
    ledger_url: Optional[str] = typer.Option(None, "--ledger", help="Ledger URL (default: from the config)."),
    days: float = typer.Option(30.0, "--days", help="Only pairs of the last N days (0: all)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """Per task type: the cheaper tier's error rate (Wilson interval), pairs, saving, verdict."""
    from ..shadow.verdicts import recommendations, spend_summary

    settings, engine = _open(config, ledger_url)
    since = time.time() - days * 86400 if days > 0 else None
    recs = recommendations(settings, engine, since=since)
    spend = spend_summary(engine, since=since)
    if as_json:
        typer.echo(json.dumps({"verdicts": [r.to_json() for r in recs], "spend": spend}, indent=1))
        return
    conf = settings.raw["shadow"]
    if not recs:
        console.print("no graded shadow pairs yet: turn [shadow] on (enabled = true, sample = 0.1) and send traffic")
        return
    t = Table(title=f"shadow verdicts (move below {conf['move_below']:.0%}, review to {conf['stay_above']:.0%}, "
                    f"{conf['confidence']:.0%} Wilson intervals, at least {conf['min_pairs']} pairs)")
    for col in ("task type", "pair", "pairs", "cheaper tier errors", "95% CI", "stronger errors", "worse than stronger",
                "feedback bad/n", "verdict", "action", "calls/24h", "monthly saving"):
        t.add_column(col, justify="right" if col in ("pairs", "calls/24h", "monthly saving") else "left")
    for r in recs:
        t.add_row(r.kind, f"{r.cheap_tier} vs {r.strong_tier}", str(r.pairs), f"{r.cheap_errors} ({r.cheap_rate:.1%})",
                  f"{r.cheap_ci[0]:.1%}-{r.cheap_ci[1]:.1%}", f"{r.strong_errors} ({r.strong_rate:.1%})", str(r.regressions),
                  f"{r.feedback_bad}/{r.feedback_n}", _VERDICT[r.verdict], r.action, str(r.calls_24h),
                  "" if r.monthly_saving_usd is None else f"${r.monthly_saving_usd:,.2f}")
    wide = console if console.is_terminal else Console(highlight=False, width=240)  # a pipe or file: no wrapping
    wide.print(t)
    share = spend["shadow_nanos"] / spend["live_nanos"] if spend["live_nanos"] else 0.0
    console.print(f"shadow spend ${spend['shadow_nanos'] / 1e9:.4f} over {spend['pairs']} pairs "
                  f"({share:.1%} of live spend ${spend['live_nanos'] / 1e9:.4f}); apply = {conf['apply']}")


@shadow_app.command("export")
def export(
    out: str = typer.Argument(..., help="Outcomes JSONL to write (the router-benchmark format)."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="tierwise.toml"),
    ledger_url: Optional[str] = typer.Option(None, "--ledger", help="Ledger URL (default: from the config)."),
) -> None:
    """Write every graded pair as an outcomes record (prompt text only when it was stored; features always)."""
    import sqlalchemy as sa

    from ..ledger.shadow_schema import shadow_pairs

    _, engine = _open(config, ledger_url)
    p = shadow_pairs.c
    n = 0
    with engine.connect() as conn, open(out, "w", encoding="utf-8") as f:
        for r in conn.execute(sa.select(shadow_pairs).where(p.status == "graded").order_by(p.id)):
            m = r._mapping
            rec = {"id": f"shadow-{m['request_id']}", "dataset": "tierwise-shadow",
                   "category": None if m["kind"] == "auto" else m["kind"], "prompt": m["prompt"] or "",
                   "features": {"spec": m["feature_spec"], **json.loads(m["features"] or "{}")},
                   "outcomes": {
                       m["live_model"]: {"score": 1.0 if m["live_passed"] else 0.0, "input_tokens": m["live_input_tokens"],
                                         "output_tokens": m["live_output_tokens"], "tokens_estimated": False},
                       m["shadow_model"]: {"score": 1.0 if m["shadow_passed"] else 0.0,
                                           "input_tokens": m["shadow_input_tokens"],
                                           "output_tokens": m["shadow_output_tokens"], "tokens_estimated": False}}}
            f.write(json.dumps(rec) + "\n")
            n += 1
    console.print(f"wrote {n} outcomes records to {out}")


@app.command("learn")
def learn_cmd(
    config: str = typer.Option("tierwise.toml", "--config", "-c", help="tierwise.toml (its [routing.options.learned] is written)."),
    ledger_url: Optional[str] = typer.Option(None, "--ledger", help="Ledger URL (default: from the config)."),
    revert: bool = typer.Option(False, "--revert", help="Restore the router the last learn replaced."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Train and calibrate; write nothing."),
) -> None:
    """Retrain the learned router on the team's graded shadow pairs, recalibrate it, keep the old one."""
    from ..errors import ConfigError
    from ..registry_history import open_db
    from ..shadow.learn import learn
    from ..shadow.learn import revert as do_revert

    settings = settings_from(config if Path(config).exists() else None, ledger={"url": ledger_url})
    if revert:
        table = do_revert(settings, Path(config))
        console.print(f"restored [routing.options.learned] in {config}: {table or '(the shipped router)'}")
        return
    try:
        res = learn(settings, open_db(settings), Path(config), dry_run=dry_run)
    except ConfigError as exc:
        fail(str(exc))
    shares = "/".join(f"{100 * s:.0f}" for s in res.shares)
    console.print(f"{'would write' if dry_run else 'wrote'} {res.artifact}: {res.records} graded pairs, tolerance "
                  f"{res.tolerance:.4g} for {res.goal}; the training prompts land {shares} (cheapest first)")
    if not dry_run:
        console.print(f"[routing.options.learned] in {config} points at it; `tierwise learn --revert` restores "
                      f"{res.previous.get('artifact') or 'the shipped router'}")


def run_shadow_demo(*, per_task: int, share: float, workdir: Optional[str]) -> None:
    """``tierwise demo --shadow``: the loop on the simulation, then the report a team would read."""
    import asyncio

    from ..shadow.loop import run_loop

    if not 1 <= per_task <= 950:
        fail(f"--per-task must be between 1 and 950 (got {per_task})")
    if not 0 < share <= 1:
        fail(f"--share must be a share in (0, 1] (got {share})")
    console.print("[bold]tierwise shadow loop[/bold] on the offline upstream's hidden quality model "
                  "(upstream.offline.quality = \"sim\": some task types are truly fine on Haiku, some are not)")
    def verdicts(path: Path) -> None:
        console.print("[bold]verdicts before anything is applied[/bold] (`tierwise shadow report`):")
        report(config=str(path), ledger_url=None, days=0, as_json=False)

    r = asyncio.run(run_loop(per_task=per_task, sample=share, workdir=workdir, say=lambda m: console.print("  " + m),
                             before_apply=verdicts))
    cfg = str(Path(r["workdir"]) / "tierwise.toml")
    console.print("[bold]after apply = \"auto\", the regression and its revert:[/bold]")
    report(config=cfg, ledger_url=None, days=0, as_json=False)
    need = list(r["pairs_to_right"].values())
    right = sum(r["verdicts_right"].values())
    console.print(f"verdicts right for {right} of {len(r['verdicts_right'])} task types"
                  + (f"; graded pairs needed until every verdict was right: {max(need)}" if None not in need else
                     " (some need more pairs: raise --per-task)"))
    console.print(f"ledger and config kept in {r['workdir']}: `tierwise shadow report -c {cfg}`; the dashboard "
                  f"(`tierwise serve -c {cfg}`, /dashboard) shows the same with the error rate over time")
