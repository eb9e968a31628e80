"""A/B tests of routing policies on live traffic.

Configured in ``tierwise.toml`` (``tierwise ab start`` writes it)::

    [ab]
    enabled = true
    name = "drafts-on-haiku"
    key = "user"                 # user (metadata.user_id) | session (x-tierwise-session) | request
    [ab.arms.A]                  # an arm with no settings is the configuration as it is (the control)
    weight = 1
    [ab.arms.B]
    weight = 1
    registry = { draft_email = "fast" }    # registry entries over the current ones
    auto = "heuristic"                     # the router for model="auto"
    options = { }                          # that router's options (thresholds...)
    default_tier = "balanced"

Each routed request is assigned by a stable hash of the chosen key, so a user (or session) stays
in one arm; with no key value the request is assigned at random. The ledger's ``arm`` column
records ``<name>/<arm>``; ``tierwise ab report`` compares the arms (see :func:`ab_report`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import sqlalchemy as sa

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import Settings
    from .routing.base import Router

__all__ = ["ABTest", "ArmPolicy", "build_ab", "ab_report", "KEYS", "validate_ab", "verdict_text"]

KEYS = ("user", "session", "request")
ARM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_ARM_KEYS = {"weight", "registry", "auto", "options", "default_tier", "description"}


@dataclass(slots=True)
class ArmPolicy:
    name: str
    label: str               # "<experiment>/<arm>", what the ledger records
    weight: float
    auto: "Router"
    registry: "Router"
    per_task: dict[str, "Router"]
    overrides: dict[str, str]
    settings: "Settings | None" = None   # the arm's own settings when it overrides the registry


def validate_ab(settings: "Settings") -> dict[str, Any] | None:
    """The ``[ab]`` table checked; None when no experiment is enabled."""
    ab = settings.raw.get("ab") or {}
    if not ab.get("enabled"):
        return None
    name = str(ab.get("name") or "")
    if not re.match(r"^[A-Za-z0-9_.-]{1,40}$", name):
        raise ConfigError("ab.name: an experiment needs a name (letters, digits, '.', '_', '-'; at most 40)")
    if ab.get("key") not in KEYS:
        raise ConfigError(f"ab.key: expected one of {', '.join(KEYS)}, got {ab.get('key')!r}")
    arms = ab.get("arms") or {}
    if not isinstance(arms, Mapping) or len(arms) < 2:
        raise ConfigError("ab.arms: an experiment needs at least two arms ([ab.arms.A], [ab.arms.B])")
    tiers = settings.catalog.tiers
    from .routing.base import available

    for arm, pol in arms.items():
        where = f"ab.arms.{arm}"
        if not ARM_NAME.match(arm):
            raise ConfigError(f"{where}: an arm name is 1-16 letters, digits, '_' or '-'")
        if not isinstance(pol, Mapping):
            raise ConfigError(f"{where}: expected a table")
        bad = sorted(set(pol) - _ARM_KEYS)
        if bad:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(bad)} (known: {', '.join(sorted(_ARM_KEYS))})")
        w = pol.get("weight", 1)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w <= 0:
            raise ConfigError(f"{where}.weight: expected a number above 0, got {w!r}")
        for key in ("registry", "options"):
            if key in pol and not isinstance(pol[key], Mapping):
                raise ConfigError(f"{where}.{key}: expected a table, got {pol[key]!r}")
        for task, tier in (pol.get("registry") or {}).items():
            if not isinstance(tier, str) or tier not in tiers:
                raise ConfigError(f"{where}.registry.{task}: unknown tier {tier!r} (tiers: {', '.join(settings.catalog.tier_order)})")
        if "auto" in pol and pol["auto"] not in available():
            raise ConfigError(f"{where}.auto: unknown routing strategy {pol['auto']!r} (available: {', '.join(available())})")
        if "default_tier" in pol and pol["default_tier"] not in tiers:
            raise ConfigError(f"{where}.default_tier: unknown tier {pol['default_tier']!r}")
    return dict(ab)


class ABTest:
    """Assigns requests to arms and holds each arm's routers."""

    def __init__(self, settings: "Settings", cfg: Mapping[str, Any], base: Any) -> None:
        from .config import Settings
        from .routing.base import build_router

        self.name = str(cfg["name"])
        self.key = str(cfg["key"])
        self.arms: list[ArmPolicy] = []
        total = sum(float((p or {}).get("weight", 1)) for p in cfg["arms"].values())
        acc = 0.0
        self.cuts: list[tuple[float, ArmPolicy]] = []
        for arm, pol in cfg["arms"].items():
            pol = dict(pol or {})
            overrides = dict(pol.get("registry") or {})
            if not any(k in pol for k in ("registry", "auto", "options", "default_tier")):
                policy = ArmPolicy(arm, f"{self.name}/{arm}", float(pol.get("weight", 1)), base.auto, base.registry,
                                   base.per_task, {})
            else:
                raw = dict(settings.raw)
                reg = dict(settings.registry)
                reg.update(overrides)
                raw["registry"] = reg
                routing = dict(settings.routing)
                if "auto" in pol:
                    routing["auto"] = pol["auto"]
                if "default_tier" in pol:
                    routing["default_tier"] = pol["default_tier"]
                raw["routing"] = routing
                s = Settings(raw=raw, source=settings.source, catalog=settings.catalog)
                opts = dict((routing.get("options") or {}).get(routing["auto"], {}))
                opts.update(pol.get("options") or {})
                up = {"upstream": base.upstream} if getattr(base, "upstream", None) is not None else {}
                per_task = {t: build_router(st, s, **up, **(routing.get("options") or {}).get(st, {}))
                            for t, st in (routing.get("strategies") or {}).items()}
                policy = ArmPolicy(arm, f"{self.name}/{arm}", float(pol.get("weight", 1)),
                                   build_router(routing["auto"], s, **up, **opts), build_router("registry", s), per_task,
                                   overrides, settings=s)
            self.arms.append(policy)
            acc += policy.weight / total
            self.cuts.append((acc, policy))

    def key_value(self, body: Mapping[str, Any], ab_key: str | None) -> str | None:
        if self.key == "request":
            return None
        if self.key == "session" and ab_key:
            return ab_key
        meta = body.get("metadata")
        if isinstance(meta, Mapping) and isinstance(meta.get("user_id"), str) and meta["user_id"]:
            return meta["user_id"]
        return ab_key if self.key == "user" else None

    def assign(self, body: Mapping[str, Any], ab_key: str | None = None) -> ArmPolicy:
        value = self.key_value(body, ab_key)
        if value is None:
            u = int.from_bytes(os.urandom(8), "big") / 2**64
        else:
            h = hashlib.blake2b(f"{self.name}\x00{value}".encode(), digest_size=8).digest()
            u = int.from_bytes(h, "big") / 2**64
        for cut, policy in self.cuts:
            if u < cut:
                return policy
        return self.cuts[-1][1]

    def refresh_registry(self, base: Mapping[str, str]) -> None:
        """After a registry change: arms with overrides keep them over the new base entries."""
        for arm in self.arms:
            if arm.settings is not None:  # swapped whole: a request never sees a half-updated registry
                arm.settings.replace_registry({**base, **arm.overrides})


def build_ab(settings: "Settings", base: Any) -> ABTest | None:
    cfg = validate_ab(settings)
    return ABTest(settings, cfg, base) if cfg else None


# -- the report -----------------------------------------------------------------------------
def _experiment(engine: sa.Engine, name: str | None) -> dict[str, Any] | None:
    from .ledger.evidence_schema import experiments

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
    from .ledger.evidence_schema import experiments

    with engine.begin() as conn:
        res = conn.execute(experiments.insert().values(name=name, started_ts=time.time(), key=key, arms=json.dumps(arms)))
    return int(res.inserted_primary_key[0])


def end_experiment(engine: sa.Engine, name: str) -> None:
    from .ledger.evidence_schema import experiments

    with engine.begin() as conn:
        conn.execute(experiments.update().where((experiments.c.name == name) & experiments.c.ended_ts.is_(None))
                     .values(ended_ts=time.time()))


def ab_report(engine: sa.Engine, name: str | None = None, *, confidence: float = 0.95) -> dict[str, Any]:
    """Per arm: cost per call, latency, escalation and error rates, bad-feedback rate; each arm against the control."""
    from .evaluation.stats import diff_ci, mean_ci, percentile, ratio_ci, wilson
    from .ledger.evidence_schema import feedback
    from .ledger.schema import calls

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
