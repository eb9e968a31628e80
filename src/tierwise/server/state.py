"""What one proxy process holds: settings, dispatcher, the upstream client and the ledger, and what
is wired around them (the resilience runtime, metrics, shadow sampler, evidence routes' state).
Everything is built in the constructor: nothing adds an attribute to a ``ProxyState`` later."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..dispatch import Dispatcher
from ..ledger import Ledger
from ..upstream import Upstream

if TYPE_CHECKING:
    from ..resilience import Runtime
    from ..shadow.runtime import ShadowRuntime
    from .feedback_routes import EvidenceState
    from .metrics import Metrics

__all__ = ["ProxyState"]


class ProxyState:
    def __init__(self, settings: Settings, dispatcher: Dispatcher, upstream: Upstream, ledger: Ledger | None, *,
                 guard: "Runtime | None" = None) -> None:
        from ..resilience import Runtime
        from .feedback_routes import EvidenceState
        from .metrics import Metrics

        self.settings = settings
        self.dispatcher = dispatcher
        self.upstream = upstream
        self.ledger = ledger
        self.log = logging.getLogger("tierwise.proxy")
        self.recorded = 0   # ledger rows handed to the ledger (one per call)
        self.inflight = 0   # calls being handled right now
        # request id -> proxy key id of this process's recent keyed calls (feedback ownership before the
        # ledger row is written); bounded, oldest dropped first
        self.owners: dict[str, str] = {}
        self.max_owners = 100_000
        self.metrics: Metrics = Metrics()   # GET /metrics
        # retries, breaker, fallbacks, keys, budgets
        self.guard: Runtime = guard if guard is not None else Runtime(settings, upstream, ledger)
        self.shadow: ShadowRuntime | None = None   # [shadow] enabled: live calls sampled and replayed
        if settings.raw["shadow"]["enabled"]:
            from ..shadow import build_shadow

            self.shadow = build_shadow(settings, upstream, ledger, dispatcher)
            self.shadow.busy = self.busy
        # feedback, /metrics, /dashboard, registry reload + monitor (its thread starts here)
        self.evidence: EvidenceState = EvidenceState(self)
        ev = self.evidence
        monitor, engine, history = ev.monitor, ev.engine, ev.history  # all set, or none (no ledger)
        if self.shadow is not None and monitor is not None and engine is not None and history is not None:
            from ..shadow.watch import ShadowWatch  # [shadow]: auto-apply, revert, scheduled learn

            monitor.shadow = ShadowWatch(settings, engine, history, runtime=self.shadow, on_change=ev._after_revert)

    def busy(self) -> bool:
        """Live calls in flight: the shadow workers give way to them."""
        return self.inflight > 0

    def record(self, row: dict[str, Any]) -> None:
        self.recorded += 1
        kid = row.get("key_id")
        if kid is not None:
            owners = self.owners
            owners[row["request_id"]] = kid
            if len(owners) > self.max_owners:
                del owners[next(iter(owners))]
        if self.metrics is not None:
            self.metrics.observe(row)
        if self.ledger is not None:
            self.ledger.record(row)
