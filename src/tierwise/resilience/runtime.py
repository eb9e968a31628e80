"""The per-process wiring of retries, fallbacks, the breaker, keys, budgets and limits."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Mapping

from ..adapt import adapt_request
from ..admission.budgets import NANOS, BudgetExceeded, Budgets, Reservation, estimate_request
from ..admission.keys import KeyRecord, KeyStore, check_model_allowed, model_tier
from ..admission.limits import InputLimits, RateLimiter
from ..capabilities import lacks, serving_tier
from ..errors import ConfigError
from ..routing.base import Decision
from ..upstream.kinds import build_peers, kinds
from .attempts import AttemptLoop
from .breaker import CircuitBreaker, build_breaker
from .fallback import Target, build_chain
from .retry import RetryPolicy
from .stores import SILENCE, StoreGuard, redis_client

if TYPE_CHECKING:
    from ..config import Settings
    from ..dispatch import Plan
    from ..ledger import Ledger
    from ..upstream import Upstream

__all__ = ["Runtime"]

log = logging.getLogger("tierwise.resilience")


def _ping_db(engine: Any) -> None:
    import sqlalchemy as sa

    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


class Runtime:
    def __init__(self, settings: "Settings", upstream: "Upstream", ledger: "Ledger | None", *,
                 peers: "Mapping[str, Upstream] | None" = None) -> None:
        self.settings = settings
        self.catalog = settings.catalog
        self.upstream = upstream
        res = settings.raw["resilience"]
        redis_url = str(res.get("redis_url") or "")
        self.redis_url = redis_url
        # one Redis client (a pool that waits) and one circuit around it, shared by the breaker, the rate
        # limits and the budgets; a circuit around the ledger database for the budgets kept there
        retry = float(res.get("store_retry_interval", 1.0))
        self.redis = redis_client(redis_url, res["redis"]) if redis_url else None
        self.redis_guard = (StoreGuard("redis", retry_interval=retry, probe=self.redis.ping,
                                       silence=SILENCE) if self.redis is not None else None)
        self.ledger = ledger
        engine = ledger.engine if ledger is not None else None
        self.db_guard = StoreGuard("ledger database (budgets)", retry_interval=retry,
                                   probe=(lambda: asyncio.to_thread(_ping_db, engine)) if engine is not None else None)
        self.breaker: CircuitBreaker | None = build_breaker(res["breaker"], redis_url, client=self.redis,
                                                            guard=self.redis_guard)
        self.policy = RetryPolicy(backoff_base=float(res["backoff_base"]), backoff_max=float(res["backoff_max"]),
                                  max_retry_after=float(res["max_retry_after"]))
        self.loop = AttemptLoop(policy=self.policy, breaker=self.breaker, catalog=self.catalog,
                                max_attempts=int(res["max_attempts"]), max_retry_time=float(res["max_retry_time"]),
                                retries_per_target=int(res["retries_per_target"]))
        self.fallbacks: Mapping[str, Any] = res.get("fallbacks") or {}
        # the upstreams a fallback may name, by kind (upstream/kinds.py): the primary's own kind, and each
        # peer whose [resilience.<kind>] is enabled (``peers``: ones built by the caller)
        self.peers: dict[str, Any] = build_peers(res, self.catalog, settings.upstream, peers)
        self.peers.setdefault(getattr(upstream, "name", "anthropic"), upstream)
        for tier, entries in self.fallbacks.items():  # their syntax is checked by load_settings
            for e in entries:
                if e in kinds() and e not in self.peers:
                    raise ConfigError(f"resilience.fallbacks.{tier}: {e!r} names an upstream that is not configured "
                                      f"(enable [resilience.{e}])")
        self.limits = InputLimits(settings.raw["limits"])
        engine = ledger.engine if ledger is not None else None
        kconf = settings.raw["keys"]
        self.keys: KeyStore | None = KeyStore(engine, required=bool(kconf["required"]),
                                              refresh_interval=float(kconf["refresh_interval"])) if engine is not None or kconf["required"] else None
        self.limiter = RateLimiter(redis_url, client=self.redis, guard=self.redis_guard,
                                   on_store_error=str(res.get("rate_limits_on_store_error", "fail_open")))
        bconf = settings.raw["budgets"]
        self.budgets = Budgets(bconf, engine=engine, redis_url=redis_url, client=self.redis, guard=self.redis_guard,
                               db_guard=self.db_guard)
        self._budget_static = bool(self.budgets.daily or self.budgets.tasks)

    # -- keys and pools ---------------------------------------------------------------
    async def admit(self, headers: dict[str, str]) -> KeyRecord | None:
        """The rules every route applies to a caller before reading a body: check its proxy key
        (when keys are enforced), strip it from ``headers``, and count the call against the key's
        requests per minute. The key, or None when keys are off."""
        key = await self.authenticate(headers)
        if key is not None:
            await self.count_request(key)
        return key

    async def authenticate(self, headers: dict[str, str]) -> KeyRecord | None:
        """The caller's proxy key (None when keys are off or not enforced), stripped from ``headers``."""
        if self.keys is None:
            return None
        await self.keys.fresh()
        if not self.keys.enforced:
            return None
        key = self.keys.authenticate(headers)
        headers.pop("x-api-key", None)
        headers.pop("authorization", None)
        return key

    async def count_request(self, key: KeyRecord) -> None:
        """Count one call against ``key``'s requests per minute (a 429 past it)."""
        if key.rpm:
            await self.limiter.check(key.id, key.rpm)

    def clamp_to_pool(self, plan: "Plan", body: dict[str, Any], key: KeyRecord) -> "Plan":
        """A routed plan moved into the key's allowed tiers; an explicit model outside them is a 403."""
        if not plan.routed:
            check_model_allowed(key, self.catalog, plan.model_id)
            return plan
        tier = plan.tier or model_tier(self.catalog, plan.model_id)
        if key.tier_allowed(tier):
            cascade = plan.decision.cascade
            if cascade is not None and not all(key.tier_allowed(t) for t in cascade.ladder):
                # a cascade escalates only through the key's tiers (none left above: no cascade)
                ladder = tuple(t for t in cascade.ladder if key.tier_allowed(t))
                kept = dataclasses.replace(cascade, ladder=ladder) if len(ladder) >= 2 else None
                plan = dataclasses.replace(plan, decision=dataclasses.replace(plan.decision, cascade=kept))
            return plan
        order = self.catalog.tier_order
        allowed = [t for t in order if key.tier_allowed(t)]
        if not allowed:
            check_model_allowed(key, self.catalog, plan.model_id)  # raises
        idx = order.index(tier) if tier in order else len(order)
        below = [t for t in allowed if order.index(t) <= idx]
        chosen = below[-1] if below else allowed[0]
        why = lacks(self.catalog.model_for_tier(chosen), plan.needs) if plan.needs is not None else None
        if why is not None:  # capability-aware within the pool: the cheapest of the key's tiers that serves it
            from ..dispatch import unservable

            pick = serving_tier(self.catalog, plan.needs, allowed=key.tier_allowed) or serving_tier(
                self.catalog, plan.needs, allowed=key.tier_allowed, limits=False)
            if pick is None:
                raise unservable(self.catalog, plan.needs, why, f"the tiers proxy key {key.id} may use ({', '.join(allowed)})")
            return self.retarget(plan, body, pick, f"key {key.id} may not use tier {tier}; {why} -> {pick}, "
                                                   "the cheapest of its tiers that serves it")
        return self.retarget(plan, body, chosen, f"key {key.id} may not use tier {tier}: {chosen}")

    def retarget(self, plan: "Plan", body: dict[str, Any], tier: str, reason: str) -> "Plan":
        model = self.catalog.model_for_tier(tier)
        adapted = adapt_request(body, model, tier=tier)
        body["model"] = model.id
        d = plan.decision
        decision = Decision(tier=tier, confidence=d.confidence, reasons=d.reasons + (reason,), router=d.router,
                            model=model.id, task=d.task, scores=d.scores)
        return dataclasses.replace(plan, decision=decision, model=model, model_id=model.id,
                                   adapted=list(plan.adapted) + adapted, routed=True)

    # -- budgets ----------------------------------------------------------------------
    def budget_scopes(self, key: KeyRecord | None, task: str | None) -> list[tuple[str, int]]:
        if not self._budget_static and (key is None or key.budget_nanos is None):
            return []
        return self.budgets.scopes(key, task)

    async def reserve(self, scopes: list[tuple[str, int]], plan: "Plan", body: dict[str, Any], body_len: int,
                      key: KeyRecord | None) -> tuple[Reservation, "Plan"]:
        model = plan.model or self.catalog.model_for_tier(self.settings.default_tier)
        max_tokens = int(body.get("max_tokens") or 0)
        uses = self.budgets.server_tool_uses
        est = estimate_request(model, body, body_len, max_tokens, server_tool_uses=uses)
        try:
            return await self.budgets.reserve(scopes, est.nanos), plan
        except BudgetExceeded as exc:
            if est.why:
                exc.message += (f"; this request's cost bound is ${est.nanos / NANOS:.4f} ({model.id}) because it "
                                f"references {', '.join(est.why)}: its real cost is counted up to the model's context "
                                "window per use")
                exc.args = (exc.message,)
            if self.budgets.action != "downgrade" or not plan.routed or plan.tier not in self.catalog.tier_order:
                raise
            order = self.catalog.tier_order
            for tier in reversed(order[: order.index(plan.tier)]):
                if key is not None and not key.tier_allowed(tier):
                    continue
                m = self.catalog.model_for_tier(tier)
                if plan.needs is not None and lacks(m, plan.needs, limits=False) is not None:
                    continue  # a tier that cannot serve the request (forced tool use, prefill...) is no downgrade
                try:
                    res = await self.budgets.reserve(scopes, estimate_request(
                        m, body, body_len, min(max_tokens, m.max_output), server_tool_uses=uses).nanos)
                except BudgetExceeded:
                    continue
                try:
                    return res, self.retarget(plan, body, tier, f"budget: downgraded from {plan.tier} ({exc.scope})")
                except BaseException:
                    try:  # release: this reservation is never handed to the caller
                        await self.budgets.settle(res, 0)
                    except Exception:
                        log.exception("could not release a budget reservation")
                    raise
            raise

    # -- attempts ---------------------------------------------------------------------
    def chain(self, plan: "Plan", body: dict[str, Any], out_body: bytes, key: KeyRecord | None, body_len: int) -> list[Target]:
        if not self.fallbacks:
            return [Target(self.upstream, plan.model_id, plan.tier, "primary", out_body, list(plan.adapted))]
        allowed = key.tier_allowed if key is not None and key.restricted else None
        return build_chain(plan, body, out_body, primary=self.upstream, fallbacks=self.fallbacks,
                           catalog=self.catalog, allowed=allowed, prompt_tokens=body_len // 4, peers=self.peers)

    def stores(self) -> dict[str, Any]:
        """Each shared store's state, for /healthz and /metrics."""
        out: dict[str, Any] = {}
        if self.redis_guard is not None:
            out["redis"] = self.redis_guard.status()
        if self.budgets.store == "database":
            out["budget_database"] = self.db_guard.status()
        b = self.budgets
        if b._unsettled or b._owed:
            out["budgets_pending"] = {"unsettled": len(b._unsettled), "owed_scopes": len(b._owed)}
        return out

    @property
    def degraded(self) -> bool:
        return any(not g.available for g in (self.redis_guard, self.db_guard) if g is not None)

    def snapshot(self) -> dict[str, Any]:
        return {"breaker": self.breaker.snapshot() if self.breaker is not None else None,
                "breaker_shared": bool(self.breaker is not None and self.breaker.shared),
                "keys_enforced": bool(self.keys is not None and self.keys.enforced),
                "budget_store": self.budgets.store}

    async def aclose(self) -> None:
        peers = [u for u in self.peers.values() if u is not self.upstream]
        for obj in (self.breaker, self.limiter, self.budgets, *peers, self.redis):
            if obj is not None:
                try:
                    await obj.aclose()
                except Exception:  # noqa: BLE001
                    log.warning("closing %s failed", type(obj).__name__)
