"""Simple strategies: the task-type ``registry``, a ``fixed`` tier, and seeded ``random`` mixing."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Mapping

from ..errors import InvalidRequestError
from .base import Decision, RouteRequest

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["RegistryRouter", "FixedRouter", "RandomRouter"]


class RegistryRouter:
    """Task type -> tier, from ``[registry]``. Unknown task types are refused with the known ones
    listed, unless ``routing.unknown_task = "default"`` sends them to the default tier."""

    name = "registry"

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings  # its registry is read per decision: a reload swaps it whole
        self.default = settings.default_tier
        self.unknown_to_default = settings.routing.get("unknown_task", "error") == "default"

    @property
    def registry(self) -> "Mapping[str, str]":
        return self.settings.registry

    def decide(self, request: RouteRequest) -> Decision:
        task = request.task
        if task is None:
            return Decision(tier=self.default, reasons=("no task type: safe default tier",), router=self.name)
        registry = self.settings.registry
        tier = registry.get(task)
        if tier is None:
            if self.unknown_to_default:
                return Decision(tier=self.default, reasons=(f"task type {task!r} not in registry: safe default tier",),
                                router=self.name, task=task)
            known = ", ".join(sorted(registry)) or "(none)"
            raise InvalidRequestError(f"unknown task type {task!r}; known task types: {known}")
        return Decision(tier=tier, reasons=(f"registry: {task} -> {tier}",), router=self.name, task=task)


class FixedRouter:
    name = "fixed"

    def __init__(self, settings: "Settings", tier: str | None = None) -> None:
        self.tier = tier or settings.default_tier

    def decide(self, request: RouteRequest) -> Decision:
        return Decision(tier=self.tier, reasons=(f"fixed tier {self.tier}",), router=self.name, task=request.task)


class RandomRouter:
    """Mixes tiers with given weights, deterministically per prompt (a seeded hash): a baseline."""

    name = "random"

    def __init__(self, settings: "Settings", weights: dict[str, float] | None = None, seed: int = 0) -> None:
        tiers = settings.catalog.tier_order
        self.weights = weights or {t: 1.0 for t in tiers if t in ("fast", "balanced", "deep")} or {tiers[0]: 1.0}
        total = sum(self.weights.values())
        acc, self.cuts = 0.0, []
        for tier, w in self.weights.items():
            acc += w / total
            self.cuts.append((acc, tier))
        self.seed = seed

    def decide(self, request: RouteRequest) -> Decision:
        h = hashlib.blake2b(f"{self.seed}:{request.text}".encode(), digest_size=8).digest()
        u = int.from_bytes(h, "big") / 2**64
        tier = next((t for cut, t in self.cuts if u < cut), self.cuts[-1][1])
        return Decision(tier=tier, confidence=0.0, reasons=(f"random mix (u={u:.3f})",), router=self.name, task=request.task)
