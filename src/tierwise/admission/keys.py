"""Proxy API keys: who may call the proxy, which tiers they may reach, how fast and for how much.

A key looks like ``tw-<8 hex>-<43 url-safe chars>``; the database keeps its SHA-256 and an
8-character prefix, never the key. Enforcement (documented in docs/production.md):

- when no key exists and ``[keys] required`` is false, the proxy stays open as before and the
  caller's own ``x-api-key``/``Authorization`` goes to the upstream;
- as soon as ``required`` is true or any key exists, every request must present a proxy key (in
  ``x-api-key`` or ``Authorization: Bearer``); it is removed before forwarding, and the upstream
  is called with the server's own key.

Keys are read into memory at start and re-read at most every ``refresh_interval`` seconds, so a
request costs a hash and a dict look-up. The bound is hard: a request never trusts a copy older
than ``refresh_interval`` (past half of it the copy is refreshed in the background; past all of it
the request waits for the re-read), so a new or revoked key takes effect on every replica within
``refresh_interval`` seconds (0: the database is read on every request). If the database cannot be
read, the last good copy is kept (and re-reading is tried again once per interval).

Roles (migration 7, table ``tierwise_key_roles``): a ``caller`` key (the default, and every key made
before roles existed) reaches the API routes; an ``operator`` key reaches them too, and also the
dashboard, ``/metrics``, ``/openapi.json``, the task list and feedback on any request id.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import sqlalchemy as sa

from ..errors import AuthenticationError, ConfigError, OverloadedError, PermissionDeniedError
from ..ledger.keys_schema import key_roles, proxy_keys

if TYPE_CHECKING:
    from ..catalog import Catalog

__all__ = ["KeyRecord", "KeyStore", "hash_key", "model_tier", "NANOS_PER_USD", "ROLES"]

log = logging.getLogger("tierwise.keys")
NANOS_PER_USD = 1_000_000_000
ROLES = ("caller", "operator")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def _tiers(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    return frozenset(t.strip() for t in text.split(",") if t.strip())


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    name: str
    prefix: str
    allow: frozenset[str] | None = None      # None: every tier
    deny: frozenset[str] = frozenset()
    rpm: int | None = None
    budget_nanos: int | None = None
    created_at: float = 0.0
    revoked_at: float | None = None
    role: str = "caller"

    @property
    def operator(self) -> bool:
        return self.role == "operator"

    def tier_allowed(self, tier: str | None) -> bool:
        if tier is None:  # a model outside every tier: only keys without restrictions reach it
            return self.allow is None and not self.deny
        if tier in self.deny:
            return False
        return self.allow is None or tier in self.allow

    @property
    def restricted(self) -> bool:
        return self.allow is not None or bool(self.deny)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "prefix": self.prefix,
                "allow": sorted(self.allow) if self.allow is not None else None, "deny": sorted(self.deny),
                "rpm": self.rpm, "budget_usd_per_day": (str(Decimal(self.budget_nanos) / NANOS_PER_USD)
                                                         if self.budget_nanos is not None else None),
                "created_at": self.created_at, "revoked": self.revoked_at is not None, "role": self.role}


def _record(row: Mapping[str, Any]) -> KeyRecord:
    return KeyRecord(id=row["id"], name=row["name"], prefix=row["prefix"], allow=_tiers(row["allow_tiers"]),
                     deny=_tiers(row["deny_tiers"]) or frozenset(), rpm=row["rpm"], budget_nanos=row["budget_nanos"],
                     created_at=row["created_at"], revoked_at=row["revoked_at"], role=row.get("role") or "caller")


def _select() -> sa.Select:
    return (sa.select(proxy_keys, key_roles.c.role)
            .select_from(proxy_keys.outerjoin(key_roles, key_roles.c.key_id == proxy_keys.c.id)))


def model_tier(catalog: "Catalog", model_id: str | None) -> str | None:
    """The tier a model belongs to: its own tier, or the tier of a model of the same family
    (``claude-opus-4-7`` counts as the Opus tier, so a key without ``deep`` cannot reach it)."""
    if not model_id:
        return None
    tier = catalog.tier_of(model_id)
    if tier is not None:
        return tier
    m = catalog.get(model_id)
    family = m.family if m is not None else next((f for f in ("haiku", "sonnet", "opus", "fable", "mythos") if f in model_id), "")
    if not family:
        return None
    for t in catalog.tier_order:
        if catalog.model_for_tier(t).family == family:
            return t
    return None


class KeyStore:
    """Keys in the ledger database, mirrored in memory."""

    def __init__(self, engine: sa.Engine | None, *, required: bool = False, refresh_interval: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.required = required
        self.refresh_interval = refresh_interval
        self.clock = clock
        self._by_hash: dict[str, KeyRecord] = {}
        self._any = False
        self._loaded_at = -math.inf   # when the copy in force was read (its query's start)
        self._tried_at = -math.inf    # last attempt, good or not
        self._refreshing = False
        self._pending: asyncio.Future[None] | None = None
        self.reads = 0                # database reads (tests and the bench count them)
        self.loaded = False           # a copy was read at least once
        if engine is not None:
            try:
                self.reload()
            except Exception as exc:  # noqa: BLE001 - a replica must start while the database is down
                log.warning("could not read proxy keys at start (%s): refusing keyed requests until it can",
                            type(exc).__name__)
        elif required:
            raise ConfigError("keys.required: proxy keys need a ledger database (ledger.url)")

    @property
    def enforced(self) -> bool:
        # never read: keys may exist, so nothing is let through unchecked
        return self.required or self._any or (self.engine is not None and not self.loaded)

    # -- reading ----------------------------------------------------------------------
    def reload(self) -> None:
        if self.engine is None:
            return
        started = self.clock()
        self._tried_at = started
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(_select())]
        self.reads += 1
        self._by_hash = {r["hash"]: _record(r) for r in rows if r["revoked_at"] is None}
        self._any = bool(rows)
        self._loaded_at = started
        self.loaded = True

    def _reload_quietly(self) -> None:
        try:
            self.reload()
        except Exception as exc:  # noqa: BLE001 - keep the last good copy
            log.warning("could not refresh proxy keys: %s", type(exc).__name__)

    async def fresh(self) -> None:
        """Make sure the copy in memory is at most ``refresh_interval`` seconds old before it is trusted.

        Past half the interval a background re-read starts (requests do not wait); past the whole
        interval the request waits for the re-read (one read shared by every waiting request). A
        failed read keeps the last good copy and is retried once per interval."""
        if self.engine is None:
            return
        if self._pending is not None and self._pending.done():
            self._pending = None
        now = self.clock()
        age = now - self._loaded_at
        interval = self.refresh_interval
        if age < interval:
            if age >= interval / 2 and not self._refreshing and now - self._tried_at >= interval / 2:
                self._refresh_in_background()
            return
        retry = interval if self.loaded else min(interval, 1.0)
        if now - self._tried_at < retry and self._pending is None:
            return  # the last read failed less than an interval ago: keep the last good copy
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.run_in_executor(None, self._reload_quietly)
        pending = self._pending
        try:
            await asyncio.shield(pending)
        finally:
            if self._pending is pending and pending.done():
                self._pending = None

    def _refresh_in_background(self) -> None:
        self._refreshing = True

        def run() -> None:
            try:
                self._reload_quietly()
            finally:
                self._refreshing = False

        try:
            asyncio.get_running_loop().run_in_executor(None, run)
        except RuntimeError:
            run()

    def maybe_refresh(self) -> None:
        """For callers outside the event loop: start a re-read when the copy is due (never waits)."""
        if self.engine is None or self._refreshing:
            return
        if self.clock() - self._loaded_at >= self.refresh_interval / 2:
            self._refresh_in_background()

    def authenticate(self, headers: Mapping[str, str]) -> KeyRecord:
        """The key presented in ``headers``; AuthenticationError (never echoing the key) otherwise."""
        presented = headers.get("x-api-key")
        if not presented:
            auth = headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                presented = auth[7:].strip()
        if not presented:
            # the API's wording first (clients and people know it), then what tierwise expects
            raise AuthenticationError("x-api-key header is required: a tierwise proxy key, in x-api-key or "
                                      "Authorization: Bearer")
        if not self.loaded:
            raise OverloadedError("proxy keys cannot be checked right now (the key database is unreachable); retry shortly",
                                  headers={"retry-after": "1"})
        rec = self._by_hash.get(hash_key(presented))
        if rec is None:
            raise AuthenticationError("invalid x-api-key: not a tierwise proxy key, or revoked")
        return rec

    def list(self) -> list[KeyRecord]:
        if self.engine is None:
            return []
        with self.engine.connect() as conn:
            return [_record(dict(r._mapping)) for r in conn.execute(_select().order_by(proxy_keys.c.created_at))]

    # -- writing ----------------------------------------------------------------------
    def create(self, name: str, *, allow: Iterable[str] | None = None, deny: Iterable[str] | None = None,
               rpm: int | None = None, budget_usd: Decimal | float | str | None = None,
               tiers: Iterable[str] | None = None, role: str = "caller") -> tuple[KeyRecord, str]:
        """Create a key; returns the record and the key itself (shown once, never stored)."""
        if self.engine is None:
            raise ConfigError("keys: proxy keys need a ledger database (ledger.url)")
        if role not in ROLES:
            raise ConfigError(f"role: expected {' or '.join(ROLES)}, got {role!r}")
        known = set(tiers) if tiers is not None else None
        allow_l = sorted({t.strip() for t in allow or () if t.strip()}) or None
        deny_l = sorted({t.strip() for t in deny or () if t.strip()})
        for t in (allow_l or []) + deny_l:
            if known is not None and t not in known:
                raise ConfigError(f"unknown tier {t!r} (tiers: {', '.join(sorted(known))})")
        if rpm is not None and rpm < 1:
            raise ConfigError("rpm: must be a positive whole number")
        budget = None
        if budget_usd is not None:
            d = Decimal(str(budget_usd))
            if d < 0:
                raise ConfigError("budget: cannot be negative")
            budget = int(d * NANOS_PER_USD)
        kid = "key_" + secrets.token_hex(4)
        key = f"tw-{kid[4:]}-{secrets.token_urlsafe(32)}"
        row = {"id": kid, "name": name[:128], "hash": hash_key(key), "prefix": key[:11],
               "allow_tiers": ",".join(allow_l) if allow_l else None, "deny_tiers": ",".join(deny_l) or None,
               "rpm": rpm, "budget_nanos": budget, "created_at": time.time(), "revoked_at": None}
        with self.engine.begin() as conn:
            conn.execute(proxy_keys.insert().values(**row))
            if role != "caller":
                conn.execute(key_roles.insert().values(key_id=kid, role=role))
        self.reload()
        return _record(dict(row, role=role)), key

    def revoke(self, key_id: str) -> bool:
        if self.engine is None:
            return False
        with self.engine.begin() as conn:
            n = conn.execute(proxy_keys.update().where(proxy_keys.c.id == key_id, proxy_keys.c.revoked_at.is_(None))
                             .values(revoked_at=time.time())).rowcount
        self.reload()
        return bool(n)


def check_model_allowed(key: KeyRecord | None, catalog: "Catalog", model_id: str) -> None:
    if key is None or not key.restricted:
        return
    tier = model_tier(catalog, model_id)
    if not key.tier_allowed(tier):
        raise PermissionDeniedError(f"this proxy key ({key.id}) may not use {model_id}"
                                    f"{' (tier ' + tier + ')' if tier else ''}; allowed tiers: "
                                    f"{', '.join(sorted(key.allow)) if key.allow is not None else 'all but ' + ', '.join(sorted(key.deny))}")
