"""What one proxy process holds: settings, dispatcher, the upstream client and the ledger."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..dispatch import Dispatcher
from ..ledger import Ledger
from ..upstream import Upstream

__all__ = ["ProxyState"]


@dataclass
class ProxyState:
    settings: Settings
    dispatcher: Dispatcher
    upstream: Upstream
    ledger: Ledger | None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("tierwise.proxy"))
    recorded: int = 0   # ledger rows handed to the ledger (one per call)
    inflight: int = 0   # calls being handled right now
    guard: Any = None   # tierwise.resilience.Runtime: retries, breaker, fallbacks, keys, budgets
    metrics: Any = None   # tierwise.server.metrics.Metrics, set by the app (GET /metrics)
    # request id -> proxy key id of this process's recent keyed calls (feedback ownership before the
    # ledger row is written); bounded, oldest dropped first
    owners: dict[str, str] = field(default_factory=dict)
    max_owners: int = 100_000
    shadow: Any = None    # tierwise.shadow.ShadowRuntime when [shadow] is enabled

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
