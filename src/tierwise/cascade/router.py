"""The ``cascade`` strategy: answer on a cheap rung first, verify, escalate on failure.

``decide`` returns the first rung with a ``CascadePlan`` (the rungs above it and the verifiers);
the proxy runs the plan with ``tierwise.cascade.run_cascade``. Options (``[routing.options.cascade]``,
or per task type under ``[routing.task_options.<task>]``)::

    ladder = ["fast", "balanced", "deep"]
    verifiers = ["stop_reason", {type = "json_schema", schema = {...}}, {type = "regex", pattern = "..."}]
    note = true        # tell the next rung, briefly, why the previous answer failed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..routing.base import Decision, RouteRequest
from .verify import build_verifiers

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["CascadeRouter", "CascadePlan"]


@dataclass(frozen=True)
class CascadePlan:
    ladder: tuple[str, ...]
    verifiers: tuple[Any, ...] = field(default=())
    note: bool = True


class CascadeRouter:
    name = "cascade"

    def __init__(self, settings: "Settings", upstream: Any = None, ladder: list[str] | None = None,
                 verifiers: list[Any] | None = None, note: bool = True) -> None:
        tiers = settings.catalog.tier_order
        ladder = list(ladder or [t for t in ("fast", "balanced", "deep") if t in tiers])
        unknown = [t for t in ladder if t not in tiers]
        if unknown or len(ladder) < 2:
            raise ConfigError(f"routing.options.cascade.ladder: needs two or more known tiers, got {ladder} "
                              f"(tiers: {', '.join(tiers)})")
        self.plan = CascadePlan(tuple(ladder), tuple(build_verifiers(verifiers or ["stop_reason", "answer_score"], upstream)), note)

    def decide(self, request: RouteRequest) -> Decision:
        first = self.plan.ladder[0]
        names = ", ".join(v.name for v in self.plan.verifiers)
        return Decision(tier=first, confidence=0.5, router=self.name, task=request.task, cascade=self.plan,
                        reasons=(f"cascade {' -> '.join(self.plan.ladder)}: start on {first}, escalate if {names} fail",))
