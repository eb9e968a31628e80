"""The A/B report: per arm of a live experiment, cost per call, latency, escalation, error and
bad-feedback rates, each arm against the control with intervals, and a one-sentence verdict.

Also the ledger record of an experiment (``tierwise ab start`` / ``stop``). The arms and the
assignment of requests to them live beside routing (:mod:`tierwise.routing.arms`).
"""

from __future__ import annotations

import json
import time
from typing import Any, Mapping

import sqlalchemy as sa

from ..errors import ConfigError

__all__ = ["ab_report", "verdict_text", "record_experiment", "end_experiment"]


def _experiment(engine: sa.Engine, name: str | None) -> dict[str, Any] | None:
    from ..ledger.evidence_schema import experiments

    q = sa.select(experiments).order_by(experiments.c.id.desc()).limit(1)
    if name:
        q = q.where(experiments.c.name == name)
    with engine.connect() as conn:
        r = conn.execute(q).first()
    if r is None:
        return None
    d = dict(r._mapping)
    d["arms"] = json.loads(d["arms"] or "{}")
    return d


def record_experiment(engine: sa.Engine, name: str, key: str, arms: Mapping[str, Any]) -> int:
    from ..ledger.evidence_schema import experiments

    with engine.begin() as conn:
        res = conn.execute(experiments.insert().values(name=name, started_ts=time.time(), key=key, arms=json.dumps(arms)))
    return int(res.inserted_primary_key[0])


def end_experiment(engine: sa.Engine, name: str) -> None:
    from ..ledger.evidence_schema import experiments

    with engine.begin() as conn:
        conn.execute(experiments.update().where((experiments.c.name == name) & experiments.c.ended_ts.is_(None))
                     .values(ended_ts=time.time()))


def ab_report(engine: sa.Engine, name: str | None = None, *, confidence: float = 0.95) -> dict[str, Any]:
    """Per arm: cost per call, latency, escalation and error rates, bad-feedback rate; each arm against the control."""
    from ..evaluation.stats import diff_ci, mean_ci, percentile, ratio_ci, wilson
    from ..ledger.evidence_schema import feedback
    from ..ledger.schema import calls

    exp = _experiment(engine, name)
    if exp is None and name is None:
        with engine.connect() as conn:
            last = conn.execute(sa.select(calls.c.arm).where(calls.c.arm.is_not(None)).order_by(calls.c.id.desc()).limit(1)).scalar()
        if last is None:
            raise ConfigError("no A/B experiment yet: tierwise ab start NAME --arm A --arm B --set B.registry.TASK=TIER")
        name = last.split("/", 1)[0]
    name = name or exp["name"]  # type: ignore[index]
    fb = (sa.select(feedback.c.request_id, sa.func.max(sa.case((feedback.c.error, 1), else_=0)).label("bad"))
          .group_by(feedback.c.request_id).subquery())
    q = (sa.select(calls.c.arm, calls.c.cost_nanos, calls.c.latency_ms, calls.c.escalations, calls.c.fallbacks,
                   calls.c.status, fb.c.bad)
         .select_from(calls.outerjoin(fb, fb.c.request_id == calls.c.request_id))
         .where(calls.c.arm.startswith(f"{name}/", autoescape=True)))
    arms: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for arm, cost, lat, esc, fbk, status, bad in conn.execute(q):
            a = arms.setdefault(arm.split("/", 1)[1], {"cost": [], "lat": [], "esc": 0, "fallbacks": 0, "errors": 0,
                                                       "n": 0, "fb_n": 0, "fb_bad": 0})
            a["n"] += 1
            if status < 400 and cost is not None:
                a["cost"].append(cost / 1e9)
            if lat is not None and status < 400:
                a["lat"].append(lat)
            a["esc"] += 1 if (esc or 0) > 0 else 0
            a["fallbacks"] += 1 if (fbk or 0) > 0 else 0
            a["errors"] += 1 if status >= 400 else 0
            if bad is not None:
                a["fb_n"] += 1
                a["fb_bad"] += int(bad)
    if not arms:
        raise ConfigError(f"experiment {name!r} has no traffic in the ledger yet")
    order = list((exp or {}).get("arms") or {}) or sorted(arms)
    order = [a for a in order if a in arms] + sorted(a for a in arms if a not in order)
    control = order[0]
    out_arms = []
    for arm in order:
        a = arms[arm]
        m, lo, hi = mean_ci(a["cost"], confidence)
        out_arms.append({
            "arm": arm, "n": a["n"], "cost_per_call_usd": m, "cost_ci": [lo, hi],
            "mean_latency_ms": sum(a["lat"]) / len(a["lat"]) if a["lat"] else None,
            "p50_latency_ms": percentile(a["lat"], 50), "p95_latency_ms": percentile(a["lat"], 95),
            "escalation_rate": a["esc"] / a["n"], "fallback_rate": a["fallbacks"] / a["n"],
            "error_rate": a["errors"] / a["n"], "feedback_n": a["fb_n"],
            "bad_rate": a["fb_bad"] / a["fb_n"] if a["fb_n"] else None,
            "bad_ci": list(wilson(a["fb_bad"], a["fb_n"], confidence)) if a["fb_n"] else None,
        })
    comparisons = []
    c = arms[control]
    for arm in order[1:]:
        b = arms[arm]
        cost = ratio_ci(c["cost"], b["cost"], confidence)
        lat = ratio_ci(c["lat"], b["lat"], confidence)
        qual = diff_ci(c["fb_bad"], c["fb_n"], b["fb_bad"], b["fb_n"], confidence)
        comp = {"arm": arm, "control": control, "n": b["n"], "n_control": c["n"],
                "cost_ratio": cost, "latency_ratio": lat, "bad_rate_diff": qual,
                "bad_rate": (b["fb_bad"] / b["fb_n"]) if b["fb_n"] else None,
                "bad_rate_control": (c["fb_bad"] / c["fb_n"]) if c["fb_n"] else None,
                "feedback_n": b["fb_n"], "feedback_n_control": c["fb_n"]}
        comp["verdict"] = verdict_text(comp, confidence)
        comparisons.append(comp)
    return {"experiment": name, "started_ts": (exp or {}).get("started_ts"), "ended_ts": (exp or {}).get("ended_ts"),
            "key": (exp or {}).get("key"), "confidence": confidence, "control": control, "arms": out_arms,
            "comparisons": comparisons}


def verdict_text(comp: Mapping[str, Any], confidence: float = 0.95) -> str:
    """One plain sentence: "B saves 41% ± 6%, no detectable quality loss at n=…"."""
    arm, ctl = comp["arm"], comp["control"]
    n_total = comp["n"] + comp["n_control"]
    cost = comp["cost_ratio"]
    if cost is None:
        money = f"not enough successful calls to compare cost ({arm} vs {ctl})"
    else:
        r, lo, hi = cost
        pm = (hi - lo) / 2 * 100
        if hi < 1:
            money = f"{arm} saves {100 * (1 - r):.0f}% ± {pm:.0f}% per call vs {ctl}"
        elif lo > 1:
            money = f"{arm} costs {100 * (r - 1):.0f}% ± {pm:.0f}% more per call than {ctl}"
        else:
            money = f"no detectable cost difference between {arm} and {ctl} ({100 * (r - 1):+.0f}% ± {pm:.0f}%)"
    q = comp["bad_rate_diff"]
    if q is None:
        quality = f"no quality signal recorded for both arms (send POST /v1/feedback); n={n_total}"
    else:
        d, lo, hi = q
        detail = (f"bad outcomes {comp['bad_rate']:.1%} vs {comp['bad_rate_control']:.1%}, "
                  f"{100 * d:+.1f} pts, {confidence:.0%} CI {100 * lo:+.1f} to {100 * hi:+.1f}")
        nf = comp["feedback_n"] + comp["feedback_n_control"]
        if lo > 0:
            quality = f"quality loss detected ({detail}; n={nf} with feedback)"
        elif hi < 0:
            quality = f"quality gain detected ({detail}; n={nf} with feedback)"
        else:
            quality = f"no detectable quality loss at n={nf} with feedback ({detail})"
    return f"{money}; {quality}."
