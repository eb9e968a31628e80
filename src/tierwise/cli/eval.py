"""``tierwise eval``: run your own inputs through every tier, grade them blind, and act on the evidence."""

from __future__ import annotations

import asyncio
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Optional

import typer

from . import app
from ._common import console, err_console, settings_from

eval_app = typer.Typer(help="Evaluate tiers on your own inputs and recommend a registry (the seeds' rule).",
                       no_args_is_help=True)
app.add_typer(eval_app, name="eval")

_CONFIG = typer.Option(None, "--config", "-c", help="Path to tierwise.toml.")
_LEDGER = typer.Option(None, "--ledger-url", help="Ledger DB holding the runs (default: ledger.url).")


def _settings(config: Optional[str], ledger_url: Optional[str] = None, offline: bool = False):
    upstream = {"kind": "offline"} if offline else {}
    return settings_from(config, ledger={"url": ledger_url}, upstream=upstream)


def _items_of(run: dict) -> list:
    from ..evaluation.graders import load_items

    try:
        return load_items(run["inputs"]) if run.get("inputs") and Path(run["inputs"]).exists() else []
    except Exception:  # noqa: BLE001 - the inputs file changed since: the sheet goes without prompts
        return []


@eval_app.command("example")
def example(out: Path = typer.Argument(Path("eval_example.jsonl"), help="Where to write the example inputs.")) -> None:
    """Write the bundled example inputs (a few task types, with checks) to OUT."""
    from ..errors import ConfigError

    src = resources.files("tierwise").joinpath("data/eval_example.jsonl")
    with resources.as_file(src) as p:
        try:
            shutil.copyfile(p, out)
        except OSError as exc:
            raise ConfigError(f"{out}: cannot write the example inputs: {exc.strerror}") from None
    n = sum(1 for line in out.read_text(encoding="utf-8").splitlines() if line.strip() and '"type": "task"' not in line)
    console.print(f"wrote {out} ({n} inputs). Next: tierwise eval run {out}")


@eval_app.command("run")
def run(
    inputs: Path = typer.Argument(..., help="JSONL inputs: one {id, task, prompt, reference?, checks?} per line."),
    tiers: Optional[str] = typer.Option(None, "--tiers", help="Comma-separated tiers (default: eval.tiers)."),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", "-j", help="Calls in flight at once."),
    max_spend: Optional[float] = typer.Option(None, "--max-spend", help="Stop starting calls past this many USD."),
    batch: bool = typer.Option(False, "--batch", help="Use the Message Batches API (50% cheaper, asynchronous)."),
    poll: float = typer.Option(10.0, "--poll", help="Seconds between batch status checks."),
    new: bool = typer.Option(False, "--new", help="Start a fresh run instead of resuming the same inputs."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Directory for report.html, report.json, outcomes.jsonl."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Error-rate threshold of the rule (default 0.05)."),
    offline: bool = typer.Option(False, "--offline", help="Use the offline upstream (synthetic answers)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    config: Optional[str] = _CONFIG,
    ledger_url: Optional[str] = _LEDGER,
) -> None:
    """Send every input through every tier, grade the answers, and report (resumes an interrupted run)."""
    import time

    from ..evaluation.batches import batches_for
    from ..evaluation.graders import load_items
    from ..evaluation.runner import (
        EvalRunner,
        RunOptions,
        make_judge,
        parse_tiers,
        run_id_for,
        write_outcomes_file,
    )
    from ..registry_history import RegistryHistory, open_db
    from ..reports.evaluation import build_report, render_html, render_terminal
    from ..upstream import build_upstream

    settings = _settings(config, ledger_url, offline)
    ev = settings.raw["eval"]
    tier_list = parse_tiers(tiers or ev["tiers"], settings)
    items = load_items(inputs, max_tokens=int(ev["max_tokens"]))
    if threshold is not None and not 0 < threshold < 1:
        raise typer.BadParameter("--threshold is a fraction between 0 and 1, e.g. 0.05")
    if max_spend is not None and max_spend <= 0:
        raise typer.BadParameter("--max-spend must be more than 0 USD")
    if out is not None and out.exists() and not out.is_dir():
        raise typer.BadParameter(f"--out {out}: is a file; give a directory for the report files")
    engine = open_db(settings)
    upstream = build_upstream(settings)
    run_id = run_id_for(items, tier_list, salt=str(time.time()) if new else "")
    runner = EvalRunner(settings, upstream, engine, batches=batches_for(settings) if batch else None)
    if runner.store.get_run(run_id) is not None:
        console.print(f"resuming run [bold]{run_id}[/bold]: answers already recorded are not paid for again")
    opts = RunOptions(tiers=tier_list, concurrency=int(concurrency or ev["concurrency"]),
                      max_spend_usd=float(max_spend if max_spend is not None else ev["max_spend_usd"]), batch=batch,
                      judge=make_judge(settings, upstream), poll_interval=poll)
    kind = settings.upstream_kind()
    console.print(f"{len(items)} inputs x {len(tier_list)} tiers ({', '.join(tier_list)}) via the {kind} upstream"
                  f"{' (Message Batches)' if batch else ''}, spend cap ${opts.max_spend_usd:g}")

    where = str(inputs.resolve())  # before the loop runs: no file-system call inside it

    async def go():
        try:
            if progress:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )

                with Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                              console=err_console, transient=False) as bar:
                    tasks: dict[str, int] = {}

                    def report(phase: str, done: int, total: int) -> None:
                        if phase not in tasks:
                            tasks[phase] = bar.add_task(phase, total=total)
                        bar.update(tasks[phase], completed=done, total=total)

                    opts.progress = report
                    return await runner.run(items, run_id, opts, inputs=where)
            return await runner.run(items, run_id, opts, inputs=where)
        finally:
            await upstream.aclose()

    try:
        summary = asyncio.run(go())
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted[/yellow]: answers so far are saved; run the same command to resume {run_id}")
        raise typer.Exit(130) from None
    for note in summary.notes:
        console.print(note)
    console.print(f"run {run_id}: {summary.calls_made} new calls, {summary.calls_reused} reused, "
                  f"{summary.calls_failed} failed, spent ${summary.spent_nanos / 1e9:.6f} in total")
    if summary.skipped_for_cap:
        console.print(f"[yellow]spend cap reached[/yellow]: {summary.skipped_for_cap} calls not made; raise --max-spend "
                      "and run again to finish")
    history = RegistryHistory(settings, engine)
    report = build_report(settings, runner.store, run_id, threshold=threshold, registry=history.current(),
                          config_path=history.path)
    render_terminal(report, console)
    out_dir = out or Path("tierwise-eval") / run_id
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.html").write_text(render_html(report), encoding="utf-8")
        (out_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        (out_dir / "registry.diff").write_text(report["diff"], encoding="utf-8")
        n = write_outcomes_file(runner.store, run_id, items, out_dir / "outcomes.jsonl")
    except OSError as exc:
        from ..errors import ConfigError

        raise ConfigError(f"--out {out_dir}: cannot write the report files ({exc.strerror}); the run is saved: "
                          f"tierwise eval report {run_id} --html FILE") from None
    console.print(f"wrote {out_dir}/report.html, report.json, registry.diff and outcomes.jsonl ({n} records, "
                  "the router-benchmark format: tierwise train can learn from it)")


@eval_app.command("report")
def report_cmd(
    run_id: Optional[str] = typer.Argument(None, help="Run id or prefix (default: the latest run)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the HTML report here."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Error-rate threshold (default eval.threshold)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    config: Optional[str] = _CONFIG,
    ledger_url: Optional[str] = _LEDGER,
) -> None:
    """Show a run's report: error rates with CIs, latency, cost per satisfactory output, recommendation."""
    from ..errors import ConfigError
    from ..evaluation.store import EvalStore
    from ..registry_history import RegistryHistory, open_db
    from ..reports.evaluation import build_report, render_html, render_terminal

    if threshold is not None and not 0 < threshold < 1:
        raise typer.BadParameter("--threshold is a fraction between 0 and 1, e.g. 0.05")
    settings = _settings(config, ledger_url)
    engine = open_db(settings)
    store = EvalStore(engine)
    run = store.resolve(run_id)
    history = RegistryHistory(settings, engine)
    rep = build_report(settings, store, run["id"], threshold=threshold, registry=history.current(), config_path=history.path)
    if as_json:
        typer.echo(json.dumps(rep, indent=2))
    else:
        render_terminal(rep, console)
    if html:
        try:
            html.write_text(render_html(rep), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--html {html}: cannot write the report: {exc.strerror}") from None
        console.print(f"wrote {html}")


@eval_app.command("apply")
def apply_cmd(
    run_id: Optional[str] = typer.Argument(None, help="Run id or prefix (default: the latest run)."),
    task: Optional[list[str]] = typer.Option(None, "--task", help="Apply only these task types."),
    actor: Optional[str] = typer.Option(None, "--actor", help="Who is applying (default: your user name)."),
    config: Optional[str] = _CONFIG,
    ledger_url: Optional[str] = _LEDGER,
) -> None:
    """Apply a report's recommendation to tierwise.toml [registry] (recorded; undo with tierwise registry undo)."""
    from ..evaluation.apply import apply_report
    from ..registry_history import RegistryHistory, open_db

    settings = _settings(config, ledger_url)
    engine = open_db(settings)
    history = RegistryHistory(settings, engine)
    changes = apply_report(settings, engine, run_id, tasks=task, actor=actor, history=history)
    if not changes:
        console.print("nothing to apply: the registry already follows the recommendation")
        return
    for ch in changes:
        console.print(f"#{ch.id} {ch.describe()}  ({ch.reason})")
    console.print(f"updated {history.path}; a running proxy picks it up within monitor.interval seconds "
                  "(or restart it). Undo one with: tierwise registry undo ID")


@eval_app.command("export-sheet")
def export_sheet_cmd(
    out: Path = typer.Argument(..., help="sheet.csv or sheet.html"),
    run_id: Optional[str] = typer.Option(None, "--run", help="Run id or prefix (default: the latest run)."),
    config: Optional[str] = _CONFIG,
    ledger_url: Optional[str] = _LEDGER,
) -> None:
    """Export a blind grading sheet (random codes, shuffled, model names redacted) for people to grade."""
    from ..evaluation.human import export_sheet
    from ..evaluation.store import EvalStore
    from ..registry_history import open_db

    settings = _settings(config, ledger_url)
    store = EvalStore(open_db(settings))
    run = store.resolve(run_id)
    prompts = {it.id: (it.prompt, it.reference) for it in _items_of(run)}
    n = export_sheet(store, run["id"], out, settings.catalog, prompts)
    console.print(f"wrote {out}: {n} answers to grade blind. Fill the grade column (pass/fail), then: "
                  f"tierwise eval import-grades {out if out.suffix == '.csv' else 'grades.csv'} --run {run['id']}")


@eval_app.command("import-grades")
def import_grades_cmd(
    sheet: Path = typer.Argument(..., help="The graded CSV (code, grade columns)."),
    run_id: Optional[str] = typer.Option(None, "--run", help="Run id or prefix (default: the latest run)."),
    config: Optional[str] = _CONFIG,
    ledger_url: Optional[str] = _LEDGER,
) -> None:
    """Import human grades; they override the automated grades in the report."""
    from ..evaluation.human import import_grades
    from ..evaluation.store import EvalStore
    from ..registry_history import open_db

    settings = _settings(config, ledger_url)
    store = EvalStore(open_db(settings))
    run = store.resolve(run_id)
    counts = import_grades(store, run["id"], sheet)
    console.print(f"imported {counts['graded']} grades ({counts['blank']} left blank) into run {run['id']}; "
                  f"see: tierwise eval report {run['id']}")


@eval_app.command("list")
def list_cmd(config: Optional[str] = _CONFIG, ledger_url: Optional[str] = _LEDGER) -> None:
    """List evaluation runs."""
    import datetime as dt

    from ..evaluation.store import EvalStore
    from ..registry_history import open_db

    settings = _settings(config, ledger_url)
    runs = EvalStore(open_db(settings)).list_runs()
    if not runs:
        console.print("no evaluation runs yet: tierwise eval example && tierwise eval run eval_example.jsonl")
    for r in runs:
        when = dt.datetime.fromtimestamp(r["ts"]).strftime("%Y-%m-%d %H:%M")
        console.print(f"{r['id']}  {when}  {r['status']:<11} tiers {r['tiers']:<20} ${r['spent_nanos'] / 1e9:.6f}  {r['inputs']}")
