"""Operating points of routers on an outcome matrix: always-each-rung, random mixing, the oracle,
a router swept over its knob, single-decision strategies; and the metric row of each curve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..outcomes import Record, outcome_cost
from . import scores as M

__all__ = ["OutcomeMatrix", "Curve", "build_matrix", "always_curves", "random_curve", "oracle_curve",
           "sweep_by_score", "choice_point", "choices_curve", "metric_row", "METRIC_COLUMNS"]


@dataclass
class OutcomeMatrix:
    """Scores Q and USD costs C of every rung (columns, cheapest first) on every prompt (rows)."""

    ladder: list[str]
    ids: list[str]
    prompts: list[str]
    categories: list[str | None]
    Q: np.ndarray
    C: np.ndarray
    responses: list[list[str | None]]
    records: list[Record] = field(repr=False, default_factory=list)

    @property
    def n(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray) -> "OutcomeMatrix":
        rows = np.asarray(rows, dtype=np.int64)
        return OutcomeMatrix(self.ladder, [self.ids[i] for i in rows], [self.prompts[i] for i in rows],
                             [self.categories[i] for i in rows], self.Q[rows], self.C[rows],
                             [self.responses[i] for i in rows], [self.records[i] for i in rows] if self.records else [])


def build_matrix(records: Sequence[Record], rungs: Sequence[Sequence[str]], prices: Mapping[str, Mapping[str, float]]) -> OutcomeMatrix:
    """Rows for the records that have an outcome for every rung (alternatives: first one present).
    Costs use the rung's own model price when known, else the price of the model that stood in."""
    from ..routing.training import rung_outcomes

    ids, prompts, cats, Q, C, resp, recs = [], [], [], [], [], [], []
    for r in records:
        models = rung_outcomes(r, rungs)
        if models is None:
            continue
        ids.append(r.id)
        prompts.append(r.prompt)
        cats.append(r.category)
        Q.append([r.outcomes[m].score for m in models])
        C.append([outcome_cost(r.outcomes[m], rung[0] if rung[0] in prices else m, prices) for m, rung in zip(models, rungs)])
        resp.append([r.outcomes[m].response for m in models])
        recs.append(r)
    R = len(rungs)
    return OutcomeMatrix([r[0] for r in rungs], ids, prompts, cats, np.array(Q, dtype=float).reshape(-1, R),
                         np.array(C, dtype=float).reshape(-1, R), resp, recs)


@dataclass
class Curve:
    """Operating points: mean cost per prompt (USD), mean quality, share of calls to the last rung."""

    name: str
    cost: np.ndarray
    quality: np.ndarray
    calls: np.ndarray | None = None
    kind: str = "sweep"          # sweep | point | cascade | baseline
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def always_curves(m: OutcomeMatrix) -> list[Curve]:
    last = len(m.ladder) - 1
    return [Curve(f"always {name}", np.array([m.C[:, i].mean()]), np.array([m.Q[:, i].mean()]),
                  np.array([1.0 if i == last else 0.0]), kind="baseline") for i, name in enumerate(m.ladder)]


def random_curve(m: OutcomeMatrix, steps: int = 11) -> Curve:
    """Expected cost/quality of random mixing between consecutive rungs (cheapest to strongest)."""
    cs, qs = m.C.mean(0), m.Q.mean(0)
    order = np.argsort(cs, kind="stable")
    pts_c, pts_q, calls = [], [], []
    last = len(m.ladder) - 1
    for a, b in zip(order[:-1], order[1:]):
        for t in np.linspace(0, 1, steps):
            pts_c.append((1 - t) * cs[a] + t * cs[b])
            pts_q.append((1 - t) * qs[a] + t * qs[b])
            calls.append((t if b == last else 0.0) + ((1 - t) if a == last else 0.0))
    return Curve("random mix", np.array(pts_c), np.array(pts_q), np.array(calls), kind="baseline")


def sweep_by_score(name: str, score: np.ndarray, m: OutcomeMatrix, kind: str = "sweep") -> Curve:
    """Two rungs: send prompts to the strong rung in decreasing order of ``score``. Tied scores form
    one group (the curve is linear across a group: the expectation under random tie-breaking)."""
    Q, C = m.Q, m.C
    order = np.argsort(-score, kind="stable")
    s = score[order]
    dq = (Q[order, -1] - Q[order, 0])
    dc = (C[order, -1] - C[order, 0])
    ends = np.concatenate([np.nonzero(np.diff(s) != 0)[0] + 1, [len(s)]])
    n = len(s)
    cq = np.concatenate([[0.0], np.cumsum(dq)[ends - 1]])
    cc = np.concatenate([[0.0], np.cumsum(dc)[ends - 1]])
    k = np.concatenate([[0], ends])
    return Curve(name, (C[:, 0].sum() + cc) / n, (Q[:, 0].sum() + cq) / n, k / n, kind=kind)


def choice_point(name: str, choice: np.ndarray, m: OutcomeMatrix, kind: str = "point") -> Curve:
    rows = np.arange(m.n)
    last = len(m.ladder) - 1
    return Curve(name, np.array([m.C[rows, choice].mean()]), np.array([m.Q[rows, choice].mean()]),
                 np.array([(choice == last).mean()]), kind=kind)


def choices_curve(name: str, choices: Sequence[np.ndarray], m: OutcomeMatrix, kind: str = "sweep") -> Curve:
    rows = np.arange(m.n)
    last = len(m.ladder) - 1
    return Curve(name, np.array([m.C[rows, c].mean() for c in choices]), np.array([m.Q[rows, c].mean() for c in choices]),
                 np.array([(c == last).mean() for c in choices]), kind=kind)


def oracle_curve(m: OutcomeMatrix, steps: int = 400) -> Curve:
    """The best possible router knowing every outcome. Two rungs: prompts in decreasing order of
    gain (ties broken by the cheaper extra cost). More rungs: per-prompt argmax of
    ``q - lambda * cost`` swept over lambda (the cost-quality frontier of all assignments)."""
    if len(m.ladder) == 2:
        gain = m.Q[:, 1] - m.Q[:, 0]
        dc = m.C[:, 1] - m.C[:, 0]
        span = np.ptp(dc) + 1e-12
        order = np.lexsort(((dc - dc.min()) / span, -gain))
        rank = np.empty(m.n)
        rank[order] = np.arange(m.n)[::-1]  # distinct, higher = earlier
        c = sweep_by_score("oracle", rank.astype(float), m, kind="baseline")
        return c
    scale = max(float(m.C.mean()), 1e-12)
    lams = np.concatenate([[0.0], np.geomspace(1e-4, 1e4, steps)]) / scale
    choices = []
    for lam in lams:
        val = m.Q - lam * m.C - 1e-9 * m.C / scale  # ties: cheaper
        choices.append(np.argmax(val, axis=1))
    return choices_curve("oracle", choices, m, kind="baseline")


METRIC_COLUMNS = ("APGR", "CPT50", "CPT80", "APGR$", "CPT50$", "CPT80$", "AIQ", "Q@50%$", "$@95%Q", "cost", "quality")


def metric_row(curve: Curve, m: OutcomeMatrix) -> dict[str, float | None]:
    """All figures of one curve (see scores.py). Call-axis figures only for two-rung ladders and
    non-cascade strategies (a cascade calls the weak rung every time: only its cost is comparable)."""
    qs = m.Q.mean(0)
    cs = m.C.mean(0)
    qw, qst = float(qs[0]), float(qs[-1])
    cw, cst = float(cs[0]), float(cs[-1])
    row: dict[str, float | None] = {}
    if len(m.ladder) == 2 and curve.calls is not None and curve.kind != "cascade":
        row["APGR"] = M.apgr(curve.calls, curve.quality, qw, qst)
        row["CPT50"] = M.cpt(curve.calls, curve.quality, qw, qst, 0.5)
        row["CPT80"] = M.cpt(curve.calls, curve.quality, qw, qst, 0.8)
    else:
        row["APGR"] = row["CPT50"] = row["CPT80"] = None
    x = (curve.cost - cw) / (cst - cw) if cst != cw else np.zeros_like(curve.cost)
    row["APGR$"] = M.apgr(x, curve.quality, qw, qst)
    row["CPT50$"] = M.cpt(x, curve.quality, qw, qst, 0.5)
    row["CPT80$"] = M.cpt(x, curve.quality, qw, qst, 0.8)
    # hull figures: the always-rung points can always be mixed in
    hc = np.concatenate([curve.cost, cs])
    hq = np.concatenate([curve.quality, qs])
    row["AIQ"] = M.aiq(hc, hq, float(cs.min()), float(cs.max()))
    q50 = M.quality_at_cost(hc, hq, 0.5 * cst)
    row["Q@50%$"] = q50 / qst if qst > 0 else None
    c95 = M.cost_for_quality(hc, hq, 0.95 * qst)
    row["$@95%Q"] = c95 / cst if c95 is not None and cst > 0 else None
    # a representative single operating point: the one nearest half the strongest rung's cost
    i = int(np.argmin(np.abs(curve.cost - 0.5 * cst))) if curve.cost.size > 1 else 0
    row["cost"] = float(curve.cost[i])
    row["quality"] = float(curve.quality[i])
    return row
