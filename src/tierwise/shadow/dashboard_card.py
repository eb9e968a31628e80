"""The dashboard's shadow card: verdicts with their evidence, and the cheaper tier's error rate over time."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["shadow_data", "shadow_card", "rolling_rates"]

_VERDICT = {"cheap": ("cheaper tier", "#15803d"), "strong": ("stronger tier", "#b91c1c"), "review": ("review", "#b45309"),
            "collecting": ("collecting", "#6b7280")}


def rolling_rates(engine: sa.Engine, kind: str, window: int = 25, since: float | None = None) -> list[dict[str, Any]]:
    """The cheaper tier's error rate over each run of ``window`` consecutive graded pairs of ``kind``."""
    from ..ledger.shadow_schema import shadow_pairs

    p = shadow_pairs.c
    q = (sa.select(p.ts, p.live_tier, p.cheap_tier, p.live_passed, p.shadow_passed)
         .where(p.kind == kind, p.status == "graded").order_by(p.ts, p.id))
    if since is not None:
        q = q.where(p.ts >= since)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    out = []
    for i in range(0, len(rows) - window + 1, window):
        chunk = rows[i:i + window]
        errs = sum(0 if (lp if lt == ct else sp) else 1 for _ts, lt, ct, lp, sp in chunk)
        out.append({"ts": chunk[-1][0], "pairs": len(chunk), "rate": errs / len(chunk)})
    return out


def shadow_data(settings: "Settings", engine: sa.Engine, days: int = 30) -> dict[str, Any] | None:
    import time

    from ..ledger.shadow_schema import shadow_pairs
    from .verdicts import recommendations, spend_summary

    try:
        with engine.connect() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(shadow_pairs)).scalar()
    except sa.exc.DBAPIError:
        return None
    since = time.time() - days * 86400
    recs = recommendations(settings, engine, since=since)
    return {"enabled": bool(settings.raw["shadow"]["enabled"]), "apply": settings.raw["shadow"]["apply"],
            "move_below": settings.raw["shadow"]["move_below"], "stay_above": settings.raw["shadow"]["stay_above"],
            "verdicts": [r.to_json() for r in recs], "spend": spend_summary(engine, since=since),
            "series": {r.kind: rolling_rates(engine, r.kind, since=since) for r in recs}}


def _lines(series: dict[str, list[dict[str, Any]]], move: float, stay: float, width: int = 1100, height: int = 230) -> str:
    from ..evaluation.charts import color_for

    kinds = [k for k, pts in series.items() if len(pts) >= 2][:8]
    if not kinds:
        return "<p class='muted'>The error rate over time appears once a task type has 50 graded pairs.</p>"
    ts = [p["ts"] for k in kinds for p in series[k]]
    t0, t1 = min(ts), max(ts)
    vmax = max(0.2, max(p["rate"] for k in kinds for p in series[k]) * 1.1)
    left, right, top, bottom = 44, width - 170, 10, height - 24

    def x(t: float) -> float:
        return left + (right - left) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.5)

    def y(v: float) -> float:
        return bottom - (bottom - top) * min(v, vmax) / vmax

    parts = [f"<line x1='{left}' y1='{bottom}' x2='{right}' y2='{bottom}' stroke='#d1d5db'/>"]
    for v in (0.0, vmax / 2, vmax):
        parts.append(f"<text x='{left - 6}' y='{y(v) + 4:.1f}' font-size='11' text-anchor='end' fill='#6b7280'>{v:.0%}</text>")
    for v, lab in ((move, "move"), (stay, "stay")):
        parts.append(f"<line x1='{left}' y1='{y(v):.1f}' x2='{right}' y2='{y(v):.1f}' stroke='#9ca3af' stroke-dasharray='4 3'/>"
                     f"<text x='{right + 4}' y='{y(v) + 4:.1f}' font-size='10.5' fill='#6b7280'>{lab} {v:.0%}</text>")
    for i, k in enumerate(kinds):
        c = color_for(k, i + 4)
        pts = " ".join(f"{x(p['ts']):.1f},{y(p['rate']):.1f}" for p in series[k])
        parts.append(f"<polyline fill='none' stroke='{c}' stroke-width='2' points='{pts}' data-series='{escape(k)}'/>")
        parts.append(f"<text x='{right + 52}' y='{top + 14 + 15 * i}' font-size='11.5' fill='{c}'>{escape(k)}</text>")
    return (f"<svg role='img' aria-label='shadow error rate over time' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg'>{''.join(parts)}</svg>")


def shadow_card(d: dict[str, Any] | None) -> str:
    from ..evaluation.charts import fmt_usd

    if not d or not d["verdicts"]:
        state = "on" if d and d["enabled"] else "off"
        return ("<div class='card'><h2>Shadow evaluation</h2><p class='muted'>No graded pairs yet (shadow is "
                f"{state}): <code>[shadow] enabled = true, sample = 0.1</code> replays a share of live calls on the next "
                "tier, off the request path, and grades both answers blind.</p></div>")
    rows = []
    for v in d["verdicts"]:
        name, color = _VERDICT[v["verdict"]]
        lo, hi = v["cheap_ci"]
        saving = "" if v["monthly_saving_usd"] is None else f"${v['monthly_saving_usd']:,.2f}"
        rows.append(f"<tr data-shadow='{escape(v['kind'])}'><td><b>{escape(v['kind'])}</b></td>"
                    f"<td>{escape(v['cheap_tier'])} vs {escape(v['strong_tier'])}</td><td class='n'>{v['pairs']:,}</td>"
                    f"<td class='n'>{v['cheap_rate']:.1%}</td><td class='n'>{lo:.1%}–{hi:.1%}</td>"
                    f"<td class='n'>{v['strong_rate']:.1%}</td><td class='n'>{v['feedback_bad']}/{v['feedback_n']}</td>"
                    f"<td><span class='chip' style='background:{color}'>{name}</span></td><td>{escape(v['action'])}</td>"
                    f"<td class='n'>{v['calls_24h']:,}</td><td class='n'>{saving}</td></tr>")
    s = d["spend"]
    share = f"{s['shadow_nanos'] / s['live_nanos']:.1%} of live spend" if s["live_nanos"] else ""
    return ("<div class='card'><h2>Shadow evaluation: which task types can move</h2>"
            f"<p class='muted'>verdict rule: the cheaper tier's error rate under {d['move_below']:.0%} (interval under "
            f"{d['stay_above']:.0%}) → cheaper tier; over {d['stay_above']:.0%} → stronger tier; between → review. "
            f"apply = {escape(d['apply'])} · shadow spend {fmt_usd(s['shadow_nanos'] / 1e9)} over {s['pairs']:,} pairs "
            f"({share})</p><table><tr><th>task type</th><th>pair</th><th class='n'>graded pairs</th>"
            "<th class='n'>cheaper tier errors</th><th class='n'>95% CI</th><th class='n'>stronger errors</th>"
            "<th class='n'>feedback bad/n</th><th>verdict</th><th>action</th><th class='n'>calls/24h</th>"
            "<th class='n'>monthly saving</th></tr>" + "".join(rows) + "</table>"
            "<h2 style='margin-top:14px'>Cheaper tier's error rate over time (per 25 graded pairs)</h2>"
            + _lines(d["series"], d["move_below"], d["stay_above"]) + "</div>")
