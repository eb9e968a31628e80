"""A/B tests of routing policies on live traffic: the arms and the assignment of a request to one.

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
records ``<name>/<arm>``; ``tierwise ab report`` compares the arms
(:func:`tierwise.reports.ab.ab_report`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import Settings
    from .base import Router

__all__ = ["ABTest", "ArmPolicy", "build_ab", "KEYS", "validate_ab"]

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
    registry_dict: dict[str, str] | None = None


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
    from .base import available

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
        from ..config import Settings
        from .base import build_router

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
                                   overrides, registry_dict=reg)
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
            if arm.registry_dict is not None:
                arm.registry_dict.clear()
                arm.registry_dict.update(base)
                arm.registry_dict.update(arm.overrides)


def build_ab(settings: "Settings", base: Any) -> ABTest | None:
    cfg = validate_ab(settings)
    return ABTest(settings, cfg, base) if cfg else None
