"""A cascade on the proxy's hot path: every rung goes through the attempt loop (retries, the
circuit breaker), and each rung's HTTP attempt carries the rung's tokens, cost and verdict."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, Mapping

from ..record import Attempt
from .run import CascadeResult, run_cascade

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..dispatch import Plan
    from ..resilience.attempts import AttemptLoop
    from ..upstream.base import UpstreamResponse

__all__ = ["cascade_through"]


async def cascade_through(loop: "AttemptLoop", upstream: Any, catalog: "Catalog", plan: "Plan", *, path: str,
                          headers: Mapping[str, str], original: dict[str, Any], body: dict[str, Any],
                          attempts: list[Attempt], day: _dt.date | None) -> CascadeResult:
    """Run ``plan``'s cascade; ``attempts`` (the caller's, so it survives a failure) gets every HTTP
    attempt, the answered ones annotated with their rung (priced: if a later rung fails, a paid
    answer still counts)."""
    from ..resilience.fallback import Target

    async def send_rung(data: bytes, model_id: str) -> "UpstreamResponse":
        target = Target(upstream, model_id, catalog.tier_of(model_id), "primary", data, [])
        outcome = await loop.run([target], path=path, headers=headers, stream=False, attempts=attempts, day=day)
        return outcome.resp

    rungs: list[Attempt] = []
    try:
        return await run_cascade(send_rung, catalog, plan.decision.cascade, original, body, day=day, rungs=rungs)
    finally:
        answered = [a for a in attempts if a.status == 200 and a.error_type is None]  # one per rung, in order
        for http, rung in zip(answered, rungs):
            http.verified_as(rung)
