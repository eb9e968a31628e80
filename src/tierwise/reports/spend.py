"""Ledger queries and aggregation: spend, calls, tokens, savings and latency by any grouping.

Used by ``tierwise report`` and meant for a dashboard too: the functions take an engine (or a
URL), read the ``calls`` table and return plain dicts; nothing here prints.

Conventions:

- money is summed exactly in integer nano-USD (``cost_nanos``) and also given in USD (float);
- savings compare against ``default_cost_nanos`` (the same usage priced on the default tier),
  counted only on rows that have a price themselves, so an unpriced model never shows as savings;
- latency percentiles are over successful calls (status < 400), linear interpolation between
  closest ranks (numpy's default); time to first token exists for streamed calls only;
- an error is a row with status >= 400 (client disconnects are recorded as 499);
- ``unpriced_calls`` counts calls answered by a model the catalog has no price for.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Sequence

import numpy as np
import sqlalchemy as sa

from ..errors import TierwiseError
from ..ledger.schema import calls

__all__ = ["GROUPS", "ReportError", "summarize", "totals", "parse_day", "bounds", "savings_sentence", "has_ledger",
           "fmt_usd", "usd_places"]

GROUPS: dict[str, sa.ColumnElement[Any]] = {
    "tier": calls.c.tier,
    "task": calls.c.task,
    "day": calls.c.day,
    "model": calls.c.model,
    "router": calls.c.router,
    "upstream": calls.c.upstream,
    "requested_model": calls.c.requested_model,
    "batch": calls.c.batch,  # Message Batches results (priced at the batch discount) apart from live calls
}

_UTC = _dt.UTC


class ReportError(TierwiseError):
    """A report argument is wrong (a date, a grouping)."""


def parse_day(text: str, what: str = "--since") -> _dt.date:
    try:
        return _dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(f"{what} {text!r}: expected a date like 2026-11-21 (YYYY-MM-DD)") from None


def _ts(value: _dt.date | _dt.datetime | str | float | None, *, end: bool, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        value = parse_day(value, what)
    if isinstance(value, _dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=_UTC)).timestamp()
    day = value + _dt.timedelta(days=1) if end else value
    return _dt.datetime(day.year, day.month, day.day, tzinfo=_UTC).timestamp()


def bounds(since: Any = None, until: Any = None) -> tuple[float | None, float | None]:
    """Unix-time bounds ``[lo, hi)``. A date ``since`` starts at 00:00 UTC; a date ``until`` includes that whole day."""
    lo = _ts(since, end=False, what="--since")
    hi = _ts(until, end=True, what="--until")
    if lo is not None and hi is not None and hi <= lo:
        raise ReportError("--until is before --since: nothing to report")
    return lo, hi


def _engine(engine: sa.Engine | str) -> sa.Engine:
    if isinstance(engine, str):
        from ..ledger import make_engine

        return make_engine(engine)
    return engine


def has_ledger(engine: sa.Engine | str) -> bool:
    """Whether the database has a ``calls`` table at all."""
    return sa.inspect(_engine(engine)).has_table(calls.name)


def _percentiles(values: list[float], qs: Sequence[float]) -> list[float | None]:
    if not values:
        return [None] * len(qs)
    return [float(v) for v in np.percentile(np.asarray(values, dtype=float), qs)]


def _int(v: Any) -> int:
    return int(v) if v is not None else 0


def summarize(engine: sa.Engine | str, *, since: Any = None, until: Any = None,
              group_by: Sequence[str] = ("tier",)) -> list[dict[str, Any]]:
    """One dict per group (``group_by=()`` gives one row for everything; an empty ledger gives ``[]``).

    Keys: the group columns, then ``calls``, ``errors``, ``unpriced_calls``, ``input_tokens``,
    ``output_tokens``, ``cache_read_tokens``, ``cache_write_tokens``, ``cost_nanos``,
    ``default_cost_nanos``, ``cost_usd``, ``default_cost_usd``, ``savings_usd``, ``savings_pct``,
    ``latency_p50_ms``, ``latency_p95_ms``, ``ttft_p50_ms``, ``first_ts``, ``last_ts``.
    Rows come sorted by the group values (``None`` last).
    """
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        raise ReportError(f"cannot group by {', '.join(unknown)} (choose from: {', '.join(GROUPS)})")
    eng = _engine(engine)
    if not has_ledger(eng):
        return []
    lo, hi = bounds(since, until)
    where = []
    if lo is not None:
        where.append(calls.c.ts >= lo)
    if hi is not None:
        where.append(calls.c.ts < hi)
    keys = [GROUPS[g].label(g) for g in group_by]
    c = calls.c
    failed = c.status >= 400
    agg = sa.select(
        *keys,
        sa.func.count().label("calls"),
        sa.func.sum(sa.case((failed, 1), else_=0)).label("errors"),
        sa.func.sum(sa.case((sa.and_(c.cost_nanos.is_(None), c.model.is_not(None)), 1), else_=0)).label("unpriced_calls"),
        sa.func.sum(c.input_tokens).label("input_tokens"),
        sa.func.sum(c.output_tokens).label("output_tokens"),
        sa.func.sum(c.cache_read_tokens).label("cache_read_tokens"),
        sa.func.sum(c.cache_write_5m_tokens + c.cache_write_1h_tokens).label("cache_write_tokens"),
        sa.func.sum(c.cost_nanos).label("cost_nanos"),
        sa.func.sum(sa.case((c.cost_nanos.is_not(None), c.default_cost_nanos), else_=None)).label("default_cost_nanos"),
        sa.func.min(c.ts).label("first_ts"),
        sa.func.max(c.ts).label("last_ts"),
    ).where(*where)
    if keys:
        agg = agg.group_by(*[GROUPS[g] for g in group_by])
    lat = sa.select(*keys, c.latency_ms, c.ttft_ms).where(*where, c.status < 400)

    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    latencies: dict[tuple[Any, ...], tuple[list[float], list[float]]] = {}
    with eng.connect() as conn:
        for r in conn.execute(agg):
            m = r._mapping
            if not m["calls"]:
                continue
            key = tuple(m[g] for g in group_by)
            groups[key] = dict(m)
        if not groups:
            return []
        for r in conn.execute(lat):
            m = r._mapping
            key = tuple(m[g] for g in group_by)
            lats, ttfts = latencies.setdefault(key, ([], []))
            if m["latency_ms"] is not None:
                lats.append(float(m["latency_ms"]))
            if m["ttft_ms"] is not None:
                ttfts.append(float(m["ttft_ms"]))

    out = []
    for key in sorted(groups, key=lambda k: tuple((v is None, str(v) if v is not None else "") for v in k)):
        g = groups[key]
        lats, ttfts = latencies.get(key, ([], []))
        p50, p95 = _percentiles(lats, (50, 95))
        (t50,) = _percentiles(ttfts, (50,))
        row: dict[str, Any] = {name: g[name] for name in group_by}
        row.update({k: _int(g[k]) for k in ("calls", "errors", "unpriced_calls", "input_tokens", "output_tokens",
                                             "cache_read_tokens", "cache_write_tokens", "cost_nanos", "default_cost_nanos")})
        row.update(_money(row["cost_nanos"], row["default_cost_nanos"]))
        row.update(latency_p50_ms=p50, latency_p95_ms=p95, ttft_p50_ms=t50,
                   first_ts=float(g["first_ts"]), last_ts=float(g["last_ts"]))
        out.append(row)
    return out


def _money(cost_nanos: int, default_nanos: int) -> dict[str, Any]:
    saved = default_nanos - cost_nanos
    return {
        "cost_usd": cost_nanos / 1e9,
        "default_cost_usd": default_nanos / 1e9,
        "savings_usd": saved / 1e9,
        "savings_pct": (saved / default_nanos * 100.0) if default_nanos else None,
    }


def totals(engine: sa.Engine | str, *, since: Any = None, until: Any = None) -> dict[str, Any] | None:
    """Everything in the window as one row (percentiles over all calls), or None when empty."""
    rows = summarize(engine, since=since, until=until, group_by=())
    return rows[0] if rows else None


def usd_places(values: Sequence[float]) -> int:
    """Decimals that keep a column of dollar amounts readable: cents for dollars, more for fractions of a cent."""
    top = max((abs(v) for v in values if v is not None), default=0.0)
    if top >= 1 or top == 0:
        return 2
    return 4 if top >= 0.01 else 6


def fmt_usd(value: float | Any, places: int = 2) -> str:
    """``$1,234.56``; negative amounts as ``-$1.00``."""
    v = float(value)
    sign = "-" if v < 0 and round(abs(v), places) != 0 else ""
    return f"{sign}${abs(v):,.{places}f}"


def savings_sentence(total: dict[str, Any] | None, default_tier: str, default_model: str,
                     fmt: Any = None) -> str:
    """"Routing saved $X (Y%) against sending everything to balanced/claude-sonnet-5-5"."""
    fmt = fmt or fmt_usd
    target = f"{default_tier}/{default_model}"
    if not total or not total.get("default_cost_nanos"):
        return f"No priced calls yet to compare against sending everything to {target}."
    saved = total["savings_usd"]
    pct = total["savings_pct"] or 0.0
    if saved >= 0:
        return f"Routing saved {fmt(saved)} ({pct:.1f}%) against sending everything to {target}."
    return f"Routing cost {fmt(-saved)} ({-pct:.1f}%) more than sending everything to {target}."

