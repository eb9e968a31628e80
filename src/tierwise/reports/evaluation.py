"""The evaluation report: per task type and tier, error rate (with a confidence interval), latency,
cost per call and cost per satisfactory output; and the seeds' rule as a recommendation.

The rule: move a task type to the lowest tier whose error rate on the sample is below the
threshold (default 5%; the seeds say 5-8%). The recommendation is written as a diff of
``tierwise.toml``'s ``[registry]`` that ``tierwise eval apply`` applies (and records in the history).
"""

from __future__ import annotations

import datetime as _dt
import difflib
import time
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..evaluation.charts import TIER_COLORS, fmt_usd, grouped_bars
from ..evaluation.stats import percentile, wilson
from ..evaluation.store import EvalStore
from ..registry_history import config_path_of, edit_registry_text

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["build_report", "render_terminal", "render_html", "SMALL_SAMPLE"]

SMALL_SAMPLE = 100  # the seeds: "a representative sample of 100-200 real inputs"


def _passed(r: dict[str, Any]) -> bool | None:
    return r["human"] if r.get("human") is not None else r["passed"]


def build_report(settings: "Settings", store: EvalStore, run_id: str, *, threshold: float | None = None,
                 confidence: float | None = None, registry: dict[str, str] | None = None,
                 config_path: Path | None = None) -> dict[str, Any]:
    ev = settings.raw["eval"]
    threshold = float(ev["threshold"] if threshold is None else threshold)
    confidence = float(ev["confidence"] if confidence is None else confidence)
    run = store.resolve(run_id)
    run_id = run["id"]
    rows = store.results(run_id)
    order = settings.catalog.tier_order
    tiers = [t for t in order if t in run["tiers"].split(",")]
    cells: list[dict[str, Any]] = []
    tasks = sorted({r["task"] for r in rows})
    for task in tasks:
        for tier in tiers:
            rs = [r for r in rows if r["task"] == task and r["tier"] == tier]
            if not rs:
                continue
            graded = [r for r in rs if _passed(r) is not None]
            n = len(graded)
            errors = sum(1 for r in graded if not _passed(r))
            ok = n - errors
            lo, hi = wilson(errors, n, confidence) if n else (0.0, 1.0)
            lat = [r["latency_ms"] for r in rs if r["latency_ms"] is not None and r["status"] == 200]
            cost = sum(int(r["cost_nanos"] or 0) for r in rs)
            cells.append({
                "task": task, "tier": tier, "model": rs[0]["model"], "calls": len(rs), "n": n, "errors": errors,
                "error_rate": errors / n if n else None, "ci_low": lo, "ci_high": hi,
                "mean_latency_ms": sum(lat) / len(lat) if lat else None, "p95_latency_ms": percentile(lat, 95),
                "cost_per_call_usd": cost / len(rs) / 1e9, "cost_per_ok_usd": (cost / ok / 1e9) if ok else None,
                "total_cost_usd": cost / 1e9, "batch": any(r["batch"] for r in rs),
                "human_graded": sum(1 for r in rs if r.get("human") is not None),
            })
    path = config_path or config_path_of(settings)
    current = dict(registry if registry is not None else settings.registry)
    default = settings.default_tier
    recs: list[dict[str, Any]] = []
    for task in tasks:
        tc = [c for c in cells if c["task"] == task and c["n"] > 0]
        cur = current.get(task)
        choice = next((c for c in tc if c["error_rate"] is not None and c["error_rate"] < threshold), None)
        n = max((c["n"] for c in tc), default=0)
        warn = f"small sample (n={n}; the seeds ask for 100-200 inputs per task type)" if n < SMALL_SAMPLE else None
        if choice is None:
            rec = {"task": task, "current": cur, "recommended": None, "change": False,
                   "reason": f"no evaluated tier has an error rate under {threshold:.0%}: keep "
                             f"{cur or default + ' (default)'}"}
        else:
            tier = choice["tier"]
            why = (f"{tier} is the lowest tier under {threshold:.0%}: {choice['error_rate']:.1%} errors "
                   f"({confidence:.0%} CI {choice['ci_low']:.1%}-{choice['ci_high']:.1%}, n={choice['n']})")
            if choice["cost_per_ok_usd"] is not None:
                why += f", {fmt_usd(choice['cost_per_ok_usd'])} per satisfactory output"
            # a task type not in the registry gets an explicit entry even on the default tier: the evidence is recorded
            rec = {"task": task, "current": cur, "recommended": tier, "change": tier != cur, "reason": why}
        rec["warning"] = warn
        recs.append(rec)
    changes = {r["task"]: r["recommended"] for r in recs if r["change"] and r["recommended"]}
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    after = edit_registry_text(before, changes) if changes else before
    diff = "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"a/{path.name}", tofile=f"b/{path.name}"))
    report = {
        "run_id": run_id, "created": time.time(), "inputs": run["inputs"], "threshold": threshold,
        "confidence": confidence, "tiers": tiers, "upstream_offline": settings.upstream_kind() == "offline",
        "spent_usd": int(run["spent_nanos"] or 0) / 1e9, "status": run["status"], "cells": cells,
        "recommendations": recs, "changes": changes, "diff": diff, "config_path": str(path),
    }
    store.update_run(run_id, report=report)
    return report


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.0f} ms"


def render_terminal(report: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    t = Table(title=f"evaluation {report['run_id']}  (threshold {report['threshold']:.0%}, "
                    f"{report['confidence']:.0%} CI)", show_lines=False)
    for col, just in (("task type", "left"), ("tier", "left"), ("n", "right"), ("error rate", "right"),
                      ("CI", "right"), ("mean lat", "right"), ("p95 lat", "right"), ("cost/call", "right"),
                      ("cost/satisfactory", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    last = None
    for c in report["cells"]:
        t.add_row(c["task"] if c["task"] != last else "", c["tier"], str(c["n"]), _pct(c["error_rate"]),
                  f"{c['ci_low']:.1%}-{c['ci_high']:.1%}", "batch" if c["batch"] else _ms(c["mean_latency_ms"]),
                  "batch" if c["batch"] else _ms(c["p95_latency_ms"]), fmt_usd(c["cost_per_call_usd"]),
                  fmt_usd(c["cost_per_ok_usd"]) if c["cost_per_ok_usd"] is not None else "none passed")
        last = c["task"]
    console.print(t)
    console.print("[bold]recommendation[/bold] (lowest tier whose error rate is under the threshold):")
    for r in report["recommendations"]:
        mark = "[green]->[/green]" if r["change"] else "  "
        console.print(f" {mark} {r['task']}: {r['reason']}" + (f"  [yellow]({r['warning']})[/yellow]" if r["warning"] else ""))
    if report["diff"]:
        console.print(f"\n[bold]proposed change[/bold] (apply with: tierwise eval apply {report['run_id']}):")
        console.print(report["diff"], markup=False, highlight=False)
    else:
        console.print("\nno registry change proposed.")
    if report.get("upstream_offline"):
        console.print("[yellow]offline upstream: answers are synthetic, so these grades demonstrate the mechanics, "
                      "not model quality.[/yellow]")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#111827}
main{max-width:1080px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:0 0 10px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:16px 18px;margin:14px 0}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{padding:6px 8px;border-bottom:1px solid #eef0f2;text-align:right}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left} th{color:#6b7280;font-weight:600}
.muted{color:#6b7280;font-size:13px} .warn{color:#a16207} .pass{color:#15803d;font-weight:600} .fail{color:#b91c1c}
pre{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:8px;overflow:auto;font-size:12px}
.chip{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
"""


def report_sections(report: dict[str, Any]) -> str:
    """The report's HTML body (also embedded in the dashboard)."""
    cells = report["cells"]
    tasks = sorted({c["task"] for c in cells})
    tiers = report["tiers"]
    key = {(c["task"], c["tier"]): c for c in cells}
    err = {k: c["error_rate"] for k, c in key.items() if c["error_rate"] is not None}
    ci = {k: (c["ci_low"], c["ci_high"]) for k, c in key.items() if c["error_rate"] is not None}
    cpo = {k: c["cost_per_ok_usd"] for k, c in key.items()}
    lat = {k: c["p95_latency_ms"] for k, c in key.items()}
    th = report["threshold"]
    parts = [
        "<div class='card'><h2>Error rate by task type and tier</h2>",
        grouped_bars(tasks, tiers, err, fmt=lambda v: f"{v:.0%}", ci=ci, threshold=th, threshold_label=f"threshold {th:.0%}",
                     label="error rate", vmax=1.0 if max(err.values(), default=0) > 0.5 else None),
        "<p class='muted'>Whiskers: Wilson confidence interval. The dashed line is the threshold of the seeds' rule.</p></div>",
        "<div class='card'><h2>Cost per satisfactory output</h2>",
        grouped_bars(tasks, tiers, cpo, fmt=fmt_usd, label="cost per satisfactory output"),
        "<p class='muted'>Total spend on the tier divided by the answers that passed: the number to compare.</p></div>",
    ]
    if any(v is not None for v in lat.values()):
        parts += ["<div class='card'><h2>p95 latency</h2>",
                  grouped_bars(tasks, tiers, lat, fmt=lambda v: f"{v:,.0f} ms", label="p95 latency"), "</div>"]
    rows = []
    for c in cells:
        chip = f"<span class='chip' style='background:{TIER_COLORS.get(c['tier'], '#6b7280')}'>{escape(c['tier'])}</span>"
        rows.append(f"<tr><td>{escape(c['task'])}</td><td>{chip}</td><td>{c['n']}</td><td>{_pct(c['error_rate'])}</td>"
                    f"<td>{c['ci_low']:.1%}-{c['ci_high']:.1%}</td><td>{'batch' if c['batch'] else _ms(c['mean_latency_ms'])}</td>"
                    f"<td>{'batch' if c['batch'] else _ms(c['p95_latency_ms'])}</td><td>{fmt_usd(c['cost_per_call_usd'])}</td>"
                    f"<td>{fmt_usd(c['cost_per_ok_usd']) if c['cost_per_ok_usd'] is not None else 'none passed'}</td></tr>")
    parts.append("<div class='card'><h2>Numbers</h2><table><tr><th>task type</th><th>tier</th><th>n</th><th>error rate</th>"
                 "<th>CI</th><th>mean latency</th><th>p95 latency</th><th>cost/call</th><th>cost/satisfactory</th></tr>"
                 + "".join(rows) + "</table></div>")
    recs = []
    for r in report["recommendations"]:
        cls = "pass" if r["change"] else "muted"
        recs.append(f"<li><b>{escape(r['task'])}</b>: <span class='{cls}'>{escape(r['reason'])}</span>"
                    + (f" <span class='warn'>({escape(r['warning'])})</span>" if r.get("warning") else "") + "</li>")
    parts.append("<div class='card'><h2>Recommendation</h2><ul>" + "".join(recs) + "</ul>")
    if report["diff"]:
        parts.append(f"<p>Apply with <code>tierwise eval apply {escape(report['run_id'])}</code>:</p><pre>{escape(report['diff'])}</pre>")
    parts.append("</div>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    when = _dt.datetime.fromtimestamp(report["created"]).strftime("%Y-%m-%d %H:%M")
    offline = ("<p class='warn'>Offline upstream: the answers are synthetic, so these grades demonstrate the mechanics, "
               "not model quality.</p>") if report.get("upstream_offline") else ""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>tierwise evaluation {escape(report['run_id'])}"
            f"</title><meta name='viewport' content='width=device-width,initial-scale=1'><style>{_CSS}</style></head><body><main>"
            f"<h1>Evaluation {escape(report['run_id'])}</h1><p class='muted'>{escape(str(report['inputs']))} · tiers "
            f"{escape(', '.join(report['tiers']))} · threshold {report['threshold']:.0%} · spent {fmt_usd(report['spent_usd'])}"
            f" · {when}</p>{offline}{report_sections(report)}</main></body></html>")
