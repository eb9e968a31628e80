"""``GET /dashboard``: one page a person reads at a glance, built from the ledger. Inline SVG, no JavaScript.

Spend over time by tier, savings against the default tier and against all-Opus, tier mix, spend
by task type, p50/p95 latency and time to first token per tier, escalations and fallbacks, the
A/B verdicts, monitor alerts, the registry and its history, and the last evaluation report.
``/dashboard/data.json`` serves the same numbers.
"""

from __future__ import annotations

import datetime as _dt
import time
from html import escape
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..cost import Usage, price
from ..evaluation.charts import TIER_COLORS, color_for, fmt_usd, grouped_bars, hbars, share_bar, stacked_bars
from ..evaluation.stats import percentile
from ..shadow.dashboard_card import shadow_card

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["collect", "render"]


def collect(settings: "Settings", engine: sa.Engine, days: int = 30) -> dict[str, Any]:
    """Every number the page shows, from the ledger DB."""
    from ..ledger.schema import calls

    since = time.time() - days * 86400
    where = calls.c.ts >= since
    c = calls.c
    with engine.connect() as conn:
        daily = conn.execute(sa.select(c.day, c.tier, sa.func.sum(c.cost_nanos), sa.func.count())
                             .where(where).group_by(c.day, c.tier).order_by(c.day)).all()
        totals = conn.execute(sa.select(sa.func.count(), sa.func.sum(c.cost_nanos),
                                        # like tierwise report: an unpriced call is never counted as a saving
                                        sa.func.sum(sa.case((c.cost_nanos.is_not(None), c.default_cost_nanos), else_=None)),
                                        sa.func.sum(sa.case((c.status >= 400, 1), else_=0)),
                                        sa.func.sum(sa.case((c.escalations > 0, 1), else_=0)),
                                        sa.func.sum(sa.case((c.fallbacks > 0, 1), else_=0)),
                                        sa.func.sum(sa.case((c.router.in_(("eval", "eval-judge")), 1), else_=0)))
                              .where(where)).one()
        by_task = conn.execute(sa.select(c.task, sa.func.sum(c.cost_nanos), sa.func.count())
                               .where(where).group_by(c.task)).all()
        by_model = conn.execute(sa.select(c.model, sa.func.sum(c.input_tokens), sa.func.sum(c.output_tokens),
                                          sa.func.sum(c.cache_write_5m_tokens), sa.func.sum(c.cache_write_1h_tokens),
                                          sa.func.sum(c.cache_read_tokens), sa.func.sum(c.cost_nanos))
                                .where(where, c.cost_nanos.is_not(None)).group_by(c.model)).all()
        lat_rows = conn.execute(sa.select(c.tier, c.latency_ms, c.ttft_ms)
                                .where(where, c.status < 400, c.latency_ms.is_not(None))
                                .order_by(c.id.desc()).limit(20000)).all()
    n, spend, default_spend, errors, escal, fallbacks, eval_calls = (int(v or 0) for v in totals)
    deep = settings.catalog.model_for_tier("deep") if "deep" in settings.catalog.tiers else None
    opus_equiv = 0
    if deep is not None:
        for _model, i, o, w5, w1, r, _cost in by_model:
            opus_equiv += price(settings.catalog, deep.id, Usage(int(i or 0), int(o or 0), int(w5 or 0), int(w1 or 0), int(r or 0)),
                                day=None) or 0
    tiers = [t for t in settings.catalog.tier_order if any(d[1] == t for d in daily)]
    tiers += sorted({d[1] or "-" for d in daily} - set(tiers))
    lat: dict[str, dict[str, float | None]] = {}
    for t in tiers:
        ls = [r[1] for r in lat_rows if (r[0] or "-") == t]
        ts = [r[2] for r in lat_rows if (r[0] or "-") == t and r[2] is not None]
        lat[t] = {"p50": percentile(ls, 50), "p95": percentile(ls, 95), "ttft_p50": percentile(ts, 50),
                  "ttft_p95": percentile(ts, 95), "n": len(ls)}
    data: dict[str, Any] = {
        "generated": time.time(), "days": days, "requests": n, "spend_usd": spend / 1e9,
        "default_tier": settings.default_tier, "default_spend_usd": default_spend / 1e9,
        "saved_vs_default_usd": (default_spend - spend) / 1e9, "opus_spend_usd": opus_equiv / 1e9,
        "saved_vs_opus_usd": (opus_equiv - spend) / 1e9, "errors": errors, "escalations": escal, "fallbacks": fallbacks,
        "eval_calls": eval_calls,
        "daily": [{"day": d, "tier": t or "-", "spend_usd": int(s or 0) / 1e9, "requests": int(k)} for d, t, s, k in daily],
        "tiers": tiers,
        "tier_mix": {t: sum(int(k) for d, tt, s, k in daily if (tt or "-") == t) for t in tiers},
        "by_task": sorted(({"task": t or "(auto)", "spend_usd": int(s or 0) / 1e9, "requests": int(k)} for t, s, k in by_task),
                          key=lambda r: -r["spend_usd"]),
        "latency": lat,
    }
    data.update(_evidence(settings, engine))
    return data


def _evidence(settings: "Settings", engine: sa.Engine) -> dict[str, Any]:
    from ..errors import ConfigError
    from ..evaluation.store import EvalStore
    from ..monitor import list_alerts
    from ..registry_history import RegistryHistory
    from ..reports.ab import ab_report

    out: dict[str, Any] = {}
    try:
        out["ab"] = ab_report(engine)
    except ConfigError:
        out["ab"] = None
    out["alerts"] = list_alerts(engine, 10)
    hist = RegistryHistory(settings, engine)
    out["history"] = [{"id": h.id, "ts": h.ts, "change": h.describe(), "actor": h.actor, "source": h.source,
                       "reason": h.reason} for h in hist.list(limit=8)]
    out["registry"] = dict(sorted(settings.registry.items()))
    run = EvalStore(engine).latest_run(with_report=True)
    out["eval"] = run["report"] if run else None
    from ..shadow.dashboard_card import shadow_data  # verdicts of the shadow loop, error rate over time

    out["shadow"] = shadow_data(settings, engine)
    return out


_CSS = """
*{box-sizing:border-box}body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f3f4f6;color:#111827}
header{background:#111827;color:#f9fafb;padding:14px 28px;display:flex;align-items:baseline;gap:16px}
header h1{font-size:19px;margin:0;font-weight:650}header span{color:#9ca3af;font-size:13px}
main{max-width:1220px;margin:0 auto;padding:18px 24px 40px}
.kpis{display:grid;grid-template-columns:repeat(5,1fr);gap:12px;margin-bottom:14px}
.kpi{background:#fff;border:1px solid #e5e7eb;border-radius:12px;padding:14px 16px}
.kpi .l{font-size:12px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em}
.kpi .v{font-size:26px;font-weight:700;margin-top:4px}.kpi .s{font-size:12.5px;color:#6b7280;margin-top:2px}
.good{color:#15803d}.bad{color:#b91c1c}
.grid{display:grid;grid-template-columns:3fr 2fr;gap:14px}.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:12px;padding:14px 18px;margin-bottom:14px}
.card h2{font-size:14.5px;margin:0 0 10px;color:#1f2937}.muted{color:#6b7280;font-size:12.5px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:5px 8px;border-bottom:1px solid #f0f1f3;text-align:left}
th{color:#6b7280;font-weight:600}td{vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
.chip{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.verdict{font-size:15px;font-weight:600;margin:6px 0 10px}.alert{border-left:4px solid #d1495b;padding:6px 10px;margin:6px 0;background:#fef2f2;font-size:13px}
.ok{border-left:4px solid #2a9d8f;background:#f0fdfa}
"""


def _chip(tier: str) -> str:
    return f"<span class='chip' style='background:{TIER_COLORS.get(tier, '#6b7280')}'>{escape(tier)}</span>"


def _when(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _kpi(key: str, label: str, value: str, sub: str = "", raw: Any = None, cls: str = "") -> str:
    return (f"<div class='kpi' data-kpi='{key}' data-value='{escape(str(raw if raw is not None else value))}'>"
            f"<div class='l'>{escape(label)}</div><div class='v {cls}'>{value}</div><div class='s'>{sub}</div></div>")


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def render(d: dict[str, Any]) -> str:
    tiers = d["tiers"]
    p95s = [v["p95"] for v in d["latency"].values() if v["p95"] is not None]
    kpis = "".join([
        _kpi("spend", f"spend, last {d['days']} days", fmt_usd(d["spend_usd"]), f"{d['requests']:,} calls",
             raw=f"{d['spend_usd']:.9f}"),
        _kpi("requests", "calls", f"{d['requests']:,}",
             f"{d['errors']} errors · {d['eval_calls']} from evaluations", raw=d["requests"]),
        _kpi("saved_default", f"saved vs all-{d['default_tier']}", fmt_usd(d["saved_vs_default_usd"]),
             f"{_pct(d['saved_vs_default_usd'], d['default_spend_usd'])} of {fmt_usd(d['default_spend_usd'])}",
             raw=f"{d['saved_vs_default_usd']:.9f}", cls="good" if d["saved_vs_default_usd"] >= 0 else "bad"),
        _kpi("saved_opus", "saved vs all-Opus", fmt_usd(d["saved_vs_opus_usd"]),
             f"{_pct(d['saved_vs_opus_usd'], d['opus_spend_usd'])} of {fmt_usd(d['opus_spend_usd'])}",
             raw=f"{d['saved_vs_opus_usd']:.9f}", cls="good" if d["saved_vs_opus_usd"] >= 0 else "bad"),
        _kpi("p95", "p95 latency (slowest tier)", f"{max(p95s):,.0f} ms" if p95s else "n/a",
             f"{d['escalations']} escalations · {d['fallbacks']} fallbacks", raw=max(p95s) if p95s else ""),
    ])
    days = sorted({r["day"] for r in d["daily"]})
    spend = {(r["day"], r["tier"]): r["spend_usd"] for r in d["daily"]}
    mix = [(t, d["tier_mix"][t]) for t in tiers if d["tier_mix"].get(t)]
    tasks = d["by_task"][:12]
    lat_vals = {("p50", t): v["p50"] for t, v in d["latency"].items()}
    lat_vals.update({("p95", t): v["p95"] for t, v in d["latency"].items()})
    ttft = {("TTFT p50", t): v["ttft_p50"] for t, v in d["latency"].items()}
    ttft.update({("TTFT p95", t): v["ttft_p95"] for t, v in d["latency"].items()})
    has_ttft = any(v is not None for v in ttft.values())
    lat_groups = ["p50", "p95"] + (["TTFT p50", "TTFT p95"] if has_ttft else [])
    lat_vals.update(ttft if has_ttft else {})
    body = [
        f"<div class='kpis'>{kpis}</div>",
        "<div class='grid'><div class='card'><h2>Spend per day, by tier</h2>",
        stacked_bars(days, tiers, spend, label="spend per day by tier", width=700, height=250),
        "</div><div class='card'><h2>Tier mix (calls)</h2>",
        share_bar(mix, label="tier mix", width=460),
        "<table style='margin-top:8px'><tr><th>tier</th><th class='n'>calls</th><th class='n'>spend</th></tr>"
        + "".join(f"<tr><td>{_chip(t)}</td><td class='n' data-tier-calls='{escape(t)}'>{k:,}</td>"
                  f"<td class='n'>{fmt_usd(sum(v for (dd, tt), v in spend.items() if tt == t))}</td></tr>" for t, k in mix)
        + "</table></div></div>",
        "<div class='grid2'><div class='card'><h2>Spend by task type</h2>",
        hbars([t["task"] for t in tasks], [t["spend_usd"] for t in tasks],
              colors=[color_for(t["task"], i + 4) for i, t in enumerate(tasks)], label="spend by task type", width=560),
        "</div><div class='card'><h2>Latency by tier</h2>",
        grouped_bars(lat_groups, tiers, {(g, t): v for (g, t), v in lat_vals.items() if v is not None},
                     fmt=lambda v: f"{v:,.0f} ms", label="latency", width=560, height=240),
        "<p class='muted'>p50 and p95 of successful calls" + (", and time to first token for streams." if has_ttft else ".")
        + "</p></div></div>",
        shadow_card(d.get("shadow")),
        _ab_card(d.get("ab")),
        "<div class='grid2'>", _alerts_card(d.get("alerts") or []), _registry_card(d), "</div>",
        _eval_card(d.get("eval")),
    ]
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>tierwise dashboard</title>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{_CSS}</style></head><body>"
            f"<header><h1>tierwise</h1><span>the last {d['days']} days · generated {_when(d['generated'])} · "
            f"<a style='color:#93c5fd' href='/dashboard/data.json?days={d['days']}'>data.json</a> · "
            "<a style='color:#93c5fd' href='/metrics'>metrics</a></span></header><main>" + "".join(body) + "</main></body></html>")


def _ab_card(ab: dict[str, Any] | None) -> str:
    if not ab:
        return ("<div class='card'><h2>A/B test</h2><p class='muted'>No experiment yet: "
                "<code>tierwise ab start NAME --arm A --arm B --set B.registry.TASK=fast</code></p></div>")
    status = "running" if not ab.get("ended_ts") else f"ended {_when(ab['ended_ts'])}"
    rows = []
    for a in ab["arms"]:
        p95 = "n/a" if a["p95_latency_ms"] is None else f"{a['p95_latency_ms']:,.0f} ms"
        bad = "n/a" if a["bad_rate"] is None else f"{a['bad_rate']:.1%}"
        ctl = " (control)" if a["arm"] == ab["control"] else ""
        rows.append(f"<tr><td><b>{escape(a['arm'])}</b>{ctl}</td><td class='n'>{a['n']:,}</td>"
                    f"<td class='n'>{fmt_usd(a['cost_per_call_usd'])}</td><td class='n'>{p95}</td>"
                    f"<td class='n'>{a['escalation_rate']:.1%}</td><td class='n'>{a['feedback_n']}</td>"
                    f"<td class='n'>{bad}</td></tr>")
    verdicts = "".join(f"<div class='verdict' data-verdict='{escape(c['arm'])}'>{escape(c['verdict'])}</div>"
                       for c in ab["comparisons"])
    return (f"<div class='card'><h2>A/B test “{escape(ab['experiment'])}” · {status}</h2>{verdicts}"
            "<table><tr><th>arm</th><th class='n'>calls</th><th class='n'>cost/call</th><th class='n'>p95 latency</th>"
            "<th class='n'>escalated</th><th class='n'>with feedback</th><th class='n'>bad outcomes</th></tr>"
            + "".join(rows) + "</table></div>")


def _alerts_card(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        items = "<div class='alert ok'>No alerts: every task type is within its margin since its last change.</div>"
    else:
        items = "".join(f"<div class='alert' data-alert='{a['id']}'><b>{escape(a['task'])}</b> · {_when(a['ts'])}"
                        f"{' · <b>reverted</b>' if a['reverted'] else ''}<br>{escape(a['message'])}</div>" for a in alerts)
    return f"<div class='card'><h2>Monitor alerts</h2>{items}</div>"


def _registry_card(d: dict[str, Any]) -> str:
    reg = "".join(f"<span style='display:inline-block;margin:0 14px 6px 0;font-size:13px'>{escape(t)} {_chip(v)}</span>"
                  for t, v in d["registry"].items())
    hist = "".join(f"<tr><td class='n'>#{h['id']}</td><td>{escape(h['change'])}</td><td>{escape(h['actor'])} "
                   f"({escape(h['source'])})</td><td class='muted'>{escape((h['reason'] or '')[:160])}</td></tr>"
                   for h in d["history"]) or "<tr><td colspan='4' class='muted'>no changes recorded yet</td></tr>"
    return (f"<div class='card'><h2>Registry and its history</h2><div>{reg}</div>"
            f"<table style='margin-top:8px'><tr><th></th><th>change</th><th>by</th><th>why</th></tr>{hist}</table>"
            "<p class='muted'>Undo any change: <code>tierwise registry undo ID</code></p></div>")


def _eval_card(rep: dict[str, Any] | None) -> str:
    if not rep:
        return ("<div class='card'><h2>Last evaluation</h2><p class='muted'>None yet: "
                "<code>tierwise eval example &amp;&amp; tierwise eval run eval_example.jsonl</code></p></div>")
    tasks = sorted({c["task"] for c in rep["cells"]})
    err = {(c["task"], c["tier"]): c["error_rate"] for c in rep["cells"] if c["error_rate"] is not None}
    ci = {(c["task"], c["tier"]): (c["ci_low"], c["ci_high"]) for c in rep["cells"] if c["error_rate"] is not None}
    recs = "".join(f"<li><b>{escape(r['task'])}</b>: {escape(r['reason'])}</li>" for r in rep["recommendations"])
    offline = " · offline upstream: synthetic answers (mechanics, not model quality)" if rep.get("upstream_offline") else ""
    return (f"<div class='card'><h2>Last evaluation · {escape(rep['run_id'])}</h2><p class='muted'>{_when(rep['created'])} · "
            f"threshold {rep['threshold']:.0%} · spent {fmt_usd(rep['spent_usd'])}{offline}</p>"
            + grouped_bars(tasks, rep["tiers"], err, fmt=lambda v: f"{v:.0%}", ci=ci, threshold=rep["threshold"],
                           threshold_label=f"threshold {rep['threshold']:.0%}", label="evaluation error rates", vmax=1.0,
                           width=1100, height=250)
            + f"<ul style='font-size:13px'>{recs}</ul></div>")
