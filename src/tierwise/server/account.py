"""The last phase of a request: its ledger row (``tierwise.record.CallRecord``), the settling
of its budget reservation, and the shadow sample of an answered call. Every path ends here once: an answer (``answered``) or a failure
(``failed``); the row is written before the answer's last byte reaches the client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..record import CallRecord, failed_cost
from .call import Answer, Call

if TYPE_CHECKING:
    from ..resilience import Runtime
    from .state import ProxyState

__all__ = ["answered", "failed", "settle", "offer_shadow"]


def _record(state: "ProxyState", call: Call, upstream: str) -> CallRecord:
    return CallRecord.new(call.request_id, call.wall, requested=call.requested, upstream=upstream, stream=call.stream,
                          key_id=call.key_id, prompt=call.prompt).route(call.plan)


def answered(state: "ProxyState", call: Call, answer: Answer) -> CallRecord:
    """The row of an answered call, recorded. The answering attempt (the last) is billed the
    answer's cost; the row's cost is the whole request's: the answer, the cascade rungs below
    it and every failed attempt before it (None only when the answer is unpriced and nothing
    else was paid). ``x-tierwise-cost-usd`` is this same number."""
    rec = _record(state, call, answer.upstream).answer(state.dispatcher.book, answer.answered, answer.usage,
                                                        prior_usage=answer.prior_usage)
    attempts = call.attempts
    if attempts:
        attempts[-1].cost_nanos = rec.cost_nanos or 0
    rec.add_failed((failed_cost(attempts[:-1]) if len(attempts) > 1 else 0) + answer.prior_cost)
    rec.finish(answer.status, started=call.started, error_type=answer.error_type, stop_reason=answer.stop_reason,
               ttft=answer.ttft, attempts=attempts, escalations=call.escalations, fallbacks=call.fallbacks,
               disconnected=answer.disconnected)
    state.record(rec.row())
    return rec


def failed(state: "ProxyState", call: Call, status: int, error_type: str, upstream: str,
           disconnected: bool = False) -> int:
    """The row of a failed call, recorded; what it paid for (every attempt's cost, a cascade's
    answered rungs included), to settle."""
    paid = sum(a.cost_nanos for a in call.attempts)
    rec = _record(state, call, upstream).answer(state.dispatcher.book, None, None).add_failed(paid)
    rec.finish(status, started=call.started, error_type=error_type, attempts=call.attempts,
               escalations=call.escalations, fallbacks=call.fallbacks, disconnected=disconnected)
    state.record(rec.row())
    return paid


async def settle(state: "ProxyState", rt: "Runtime", call: Call, total: int) -> None:
    """Settle the budget reservation, if any, at what the call cost (callers skip the await without one)."""
    if call.reservation is None:
        return
    try:
        await rt.budgets.settle(call.reservation, total)
    except Exception:
        state.log.exception("could not settle the budget reservation of %s", call.request_id)


def offer_shadow(state: "ProxyState", call: Call, answer: Answer) -> None:
    """[shadow]: maybe queue a replay of an answered call; never waits, never fails the call."""
    if state.shadow is not None and answer.error_type is None and call.body is not None:
        state.shadow.offer(request_id=call.request_id, plan=call.plan, body=call.body, sent=call.out_body,
                           answer=None if answer.live is not None else answer.data, headers=call.headers,
                           key_id=call.key_id, status=answer.status)
