"""Proxy API keys: who may call the proxy, which tiers they may reach, how fast and for how much.

A key looks like ``tw-<8 hex>-<43 url-safe chars>``; the database keeps its SHA-256 and an
8-character prefix, never the key. Enforcement (documented in docs/production.md):

- when no key exists and ``[keys] required`` is false, the proxy stays open as before and the
  caller's own ``x-api-key``/``Authorization`` goes to the upstream;
- as soon as ``required`` is true or any key exists, every request must present a proxy key (in
  ``x-api-key`` or ``Authorization: Bearer``); it is removed before forwarding, and the upstream
  is called with the server's own key.

Keys are read into memory at start and re-read every ``refresh_interval`` seconds off the
request path, so a request costs a hash and a dict look-up; a new or revoked key takes effect
within that interval on every replica.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import sqlalchemy as sa

from .errors import AuthenticationError, ConfigError, PermissionDeniedError
from .ledger.keys_schema import proxy_keys

if TYPE_CHECKING:
    from .catalog import Catalog

__all__ = ["KeyRecord", "KeyStore", "hash_key", "model_tier", "NANOS_PER_USD"]

log = logging.getLogger("tierwise.keys")
NANOS_PER_USD = 1_000_000_000


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
                "created_at": self.created_at, "revoked": self.revoked_at is not None}


def _record(row: Mapping[str, Any]) -> KeyRecord:
    return KeyRecord(id=row["id"], name=row["name"], prefix=row["prefix"], allow=_tiers(row["allow_tiers"]),
                     deny=_tiers(row["deny_tiers"]) or frozenset(), rpm=row["rpm"], budget_nanos=row["budget_nanos"],
                     created_at=row["created_at"], revoked_at=row["revoked_at"])


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

    def __init__(self, engine: sa.Engine | None, *, required: bool = False, refresh_interval: float = 5.0) -> None:
        self.engine = engine
        self.required = required
        self.refresh_interval = refresh_interval
        self._by_hash: dict[str, KeyRecord] = {}
        self._any = False
        self._loaded_at = 0.0
        self._refreshing = False
        if engine is not None:
            self.reload()
        elif required:
            raise ConfigError("keys.required: proxy keys need a ledger database (ledger.url)")

    @property
    def enforced(self) -> bool:
        return self.required or self._any

    # -- reading ----------------------------------------------------------------------
    def reload(self) -> None:
        if self.engine is None:
            return
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(proxy_keys))]
        self._by_hash = {r["hash"]: _record(r) for r in rows if r["revoked_at"] is None}
        self._any = bool(rows)
        self._loaded_at = time.monotonic()

    def maybe_refresh(self) -> None:
        if self.engine is None or self._refreshing or time.monotonic() - self._loaded_at < self.refresh_interval:
            return
        self._refreshing = True
        self._loaded_at = time.monotonic()

        def run() -> None:
            try:
                self.reload()
            except Exception as exc:  # noqa: BLE001 - keep the last good copy
                log.warning("could not refresh proxy keys: %s", type(exc).__name__)
            finally:
                self._refreshing = False

        try:
            asyncio.get_running_loop().run_in_executor(None, run)
        except RuntimeError:
            run()

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
        rec = self._by_hash.get(hash_key(presented))
        if rec is None:
            raise AuthenticationError("invalid x-api-key: not a tierwise proxy key, or revoked")
        return rec

    def list(self) -> list[KeyRecord]:
        if self.engine is None:
            return []
        with self.engine.connect() as conn:
            return [_record(dict(r._mapping)) for r in conn.execute(sa.select(proxy_keys).order_by(proxy_keys.c.created_at))]

    # -- writing ----------------------------------------------------------------------
    def create(self, name: str, *, allow: Iterable[str] | None = None, deny: Iterable[str] | None = None,
               rpm: int | None = None, budget_usd: Decimal | float | str | None = None,
               tiers: Iterable[str] | None = None) -> tuple[KeyRecord, str]:
        """Create a key; returns the record and the key itself (shown once, never stored)."""
        if self.engine is None:
            raise ConfigError("keys: proxy keys need a ledger database (ledger.url)")
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
        self.reload()
        return _record(row), key

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
