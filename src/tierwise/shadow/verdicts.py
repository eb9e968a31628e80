"""From graded pairs to the seeds' verdict, per task type, with the evidence behind it.

For each task type (and ``auto``) and pair of tiers compared: the graded pairs, the cheaper tier's
error rate (its answer failed the grade) with a Wilson interval, the stronger tier's, how often the
cheaper one failed where the stronger passed, downstream feedback on the sampled live calls
(``POST /v1/feedback`` joins on the request id), and the verdict:

- ``cheap``: the error rate is under ``move_below`` (5%) and its interval's upper end under
  ``stay_above`` (8%): the task type belongs on the cheaper tier;
- ``strong``: over ``stay_above`` and the interval's lower end over ``move_below``: it stays on (or goes
  back to) the stronger tier;
- ``review``: the rate is between the two lines (the seeds' grey zone: a person decides);
- ``collecting``: fewer than ``min_pairs`` graded pairs, or an interval too wide to tell.

The monthly saving of following the verdict is priced with the cost matrix (``costmatrix.py``) on
live figures: the task type's calls in the last 24 hours and its mean tokens per call.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..evaluation.stats import wilson
from ..ledger.evidence_schema import feedback
from ..ledger.shadow_schema import shadow_pairs

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Verdict", "verdict_for", "recommendations", "error_series", "spend_summary"]

DAY = 86400.0


def verdict_for(k: int, n: int, *, move_below: float, stay_above: float, confidence: float, min_pairs: int) -> str:
    if n < min_pairs:
        return "collecting"
    p = k / n
    lo, hi = wilson(k, n, confidence)
    if p < move_below and hi < stay_above:
        return "cheap"
    if p > stay_above and lo > move_below:
        return "strong"
    if move_below <= p <= stay_above:
        return "review"
    return "collecting"


@dataclass
class Verdict:
    kind: str
    cheap_tier: str
    strong_tier: str
    pairs: int
    cheap_errors: int
    cheap_rate: float | None
    cheap_ci: tuple[float, float]
    strong_errors: int
    strong_rate: float | None
    regressions: int                 # cheaper failed where the stronger passed
    verdict: str                     # cheap | strong | review | collecting
    current_tier: str | None         # the registry entry (None for auto)
    action: str                      # what to do, in words
    target_tier: str | None          # the tier to move to, when a move is recommended
    calls_24h: int = 0
    monthly_saving_usd: Decimal | None = None
    feedback_n: int = 0
    feedback_bad: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    shadow_spend_nanos: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["monthly_saving_usd"] = None if self.monthly_saving_usd is None else float(self.monthly_saving_usd)
        return d


def _pairs_query(since: float | None, kind: str | None = None) -> Any:
    p = shadow_pairs.c
    q = sa.select(p.kind, p.live_tier, p.shadow_tier, p.cheap_tier, p.live_passed, p.shadow_passed, p.ts, p.request_id,
                  p.shadow_cost_nanos + p.judge_cost_nanos + p.replay_cost_nanos).where(p.status == "graded")
    if since is not None:
        q = q.where(p.ts >= since)
    if kind is not None:
        q = q.where(p.kind == kind)
    return q.order_by(p.ts, p.id)


def recommendations(settings: "Settings", engine: sa.Engine, *, since: float | None = None,
                    now: float | None = None) -> list[Verdict]:
    conf = settings.raw["shadow"]
    order = list(settings.catalog.tier_order)
    now = time.time() if now is None else now
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    with engine.connect() as conn:
        for kind, live_t, shadow_t, cheap_t, lp, sp, ts, rid, spend in conn.execute(_pairs_query(since)):
            strong_t = shadow_t if cheap_t == live_t else live_t
            g = groups.setdefault((kind, cheap_t, strong_t), {"n": 0, "ck": 0, "sk": 0, "reg": 0, "first": ts, "last": ts,
                                                               "rids": [], "spend": 0})
            cheap_ok, strong_ok = (lp, sp) if cheap_t == live_t else (sp, lp)
            g["n"] += 1
            g["ck"] += 0 if cheap_ok else 1
            g["sk"] += 0 if strong_ok else 1
            g["reg"] += 1 if (not cheap_ok and strong_ok) else 0
            g["last"] = ts
            g["spend"] += int(spend or 0)
            g["rids"].append(rid)
        fb = _feedback_counts(conn, [r for g in groups.values() for r in g["rids"]])
        volume = _volume(conn, now)
    out = []
    registry = settings.registry
    for (kind, cheap_t, strong_t), g in sorted(groups.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]))):
        n, k = g["n"], g["ck"]
        v = verdict_for(k, n, move_below=float(conf["move_below"]), stay_above=float(conf["stay_above"]),
                        confidence=float(conf["confidence"]), min_pairs=int(conf["min_pairs"]))
        current = registry.get(kind) if kind != "auto" else None
        target = None
        if v == "cheap":
            target = cheap_t if current not in (None, cheap_t) and order.index(current) > order.index(cheap_t) else None
            action = f"move to {cheap_t}" if target else (f"keep on {cheap_t}" if current == cheap_t else f"{cheap_t} is enough")
        elif v == "strong":
            target = strong_t if current is not None and order.index(current) < order.index(strong_t) else None
            action = f"move to {strong_t}" if target else (f"keep on {current}" if current else f"needs {strong_t}")
        elif v == "review":
            action = "review by hand (between the lines)"
        else:
            action = f"collecting ({n}/{conf['min_pairs']} pairs)" if n < int(conf["min_pairs"]) else "collecting (interval too wide)"
        calls, tin, tout = volume.get(kind, (0, 0, 0))
        saving = _saving(settings, current, target, calls, tin, tout) if target else None
        fn, fbad = 0, 0
        for rid in g["rids"]:
            if rid in fb:
                fn += 1
                fbad += fb[rid]
        out.append(Verdict(kind, cheap_t, strong_t, n, k, k / n if n else None, wilson(k, n, float(conf["confidence"])),
                           g["sk"], g["sk"] / n if n else None, g["reg"], v, current, action, target, calls, saving,
                           fn, fbad, g["first"], g["last"], g["spend"]))
    return out


def _feedback_counts(conn: sa.Connection, rids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(0, len(rids), 500):
        chunk = rids[i:i + 500]
        q = (sa.select(feedback.c.request_id, sa.func.max(sa.case((feedback.c.error, 1), else_=0)))
             .where(feedback.c.request_id.in_(chunk)).group_by(feedback.c.request_id))
        for rid, bad in conn.execute(q):
            out[rid] = int(bad or 0)
    return out


def _volume(conn: sa.Connection, now: float) -> dict[str, tuple[int, int, int]]:
    """task type (or auto) -> (calls in the last 24 h, mean input tokens, mean output tokens), live calls only."""
    from ..ledger.schema import calls

    c = calls.c
    kind = sa.func.coalesce(c.task, sa.literal("auto"))
    q = (sa.select(kind, sa.func.count(), sa.func.avg(c.input_tokens + c.cache_read_tokens + c.cache_write_5m_tokens
                                                      + c.cache_write_1h_tokens), sa.func.avg(c.output_tokens))
         .where(c.ts >= now - DAY, c.status == 200, sa.or_(c.router.is_(None), c.router.not_in(("eval", "eval-judge"))),
                sa.or_(c.task.is_not(None), c.requested_model == "auto"))
         .group_by(kind))
    return {k: (int(n), int(ti or 0), int(to or 0)) for k, n, ti, to in conn.execute(q)}


def _saving(settings: "Settings", current: str | None, target: str, calls: int, tin: int, tout: int) -> Decimal | None:
    """Monthly USD saved by moving ``calls`` a day of this size from ``current`` to ``target`` (negative: it costs more)."""
    from ..costmatrix import catalog_prices, monthly_matrix

    if current is None or calls <= 0:
        return None
    tiers = [current, target]
    m = monthly_matrix(calls_per_day=calls, input_tokens=tin, output_tokens=tout, days=30, tiers=tiers,
                       mix=[Decimal(1), Decimal(0)], prices=catalog_prices(settings.catalog, tiers, input_tokens=tin),
                       default_tier=current)
    return (m.by_tier(current).monthly_usd - m.by_tier(target).monthly_usd).quantize(Decimal("0.01"))


def error_series(engine: sa.Engine, kind: str, *, bucket: float = DAY, since: float | None = None) -> list[dict[str, Any]]:
    """The cheaper tier's error rate over time for ``kind``: one point per ``bucket`` seconds."""
    out: dict[int, list[int]] = {}
    with engine.connect() as conn:
        for _k, live_t, _s, cheap_t, lp, sp, ts, _rid, _sp in conn.execute(_pairs_query(since, kind)):
            ok = lp if cheap_t == live_t else sp
            b = out.setdefault(int(ts // bucket), [0, 0])
            b[0] += 1
            b[1] += 0 if ok else 1
    return [{"ts": k * bucket, "pairs": n, "errors": e, "rate": e / n} for k, (n, e) in sorted(out.items())]


def spend_summary(engine: sa.Engine, *, since: float | None = None) -> dict[str, int]:
    """Shadow spend and live spend (of the sampled calls and of all live calls) in nanos since ``since``."""
    from ..ledger.schema import calls

    p = shadow_pairs.c
    with engine.connect() as conn:
        q = sa.select(sa.func.count(), sa.func.sum(p.shadow_cost_nanos), sa.func.sum(p.judge_cost_nanos),
                      sa.func.sum(p.replay_cost_nanos), sa.func.sum(p.live_cost_nanos))
        if since is not None:
            q = q.where(p.ts >= since)
        n, sc, jc, rc, lc = conn.execute(q).one()
        lq = sa.select(sa.func.count(), sa.func.sum(calls.c.cost_nanos)).where(
            sa.or_(calls.c.router.is_(None), calls.c.router.not_in(("eval", "eval-judge"))))
        if since is not None:
            lq = lq.where(calls.c.ts >= since)
        ln, live = conn.execute(lq).one()
    shadow = int(sc or 0) + int(jc or 0) + int(rc or 0)
    return {"pairs": int(n or 0), "shadow_nanos": shadow, "shadow_calls_nanos": int(sc or 0), "judge_nanos": int(jc or 0),
            "replay_nanos": int(rc or 0), "sampled_live_nanos": int(lc or 0), "live_calls": int(ln or 0),
            "live_nanos": int(live or 0)}
