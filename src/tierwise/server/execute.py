"""The execute phase: send the planned request, as a single call through the attempt loop
(retries, fallbacks, the circuit breaker) or as a cascade (``tierwise.cascade``); either way one
``Answer`` comes back for respond and account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..affinity import message_thinking_keys
from ..cascade.proxy import cascade_through
from ..cost import Usage
from ..resilience.retry import call_budget
from ..upstream.sse import message_events
from .call import Answer, Call
from .wire import DisconnectWatch

if TYPE_CHECKING:
    from ..resilience import Runtime
    from .state import ProxyState

__all__ = ["execute", "answered_model"]


async def execute(state: "ProxyState", rt: "Runtime", call: Call, watch: DisconnectWatch) -> Answer:
    assert call.plan is not None and call.body is not None
    if call.plan.decision.cascade is not None:
        with watch.during("during the cascade"):
            return await _cascade(state, rt, call)
    chain = rt.chain(call.plan, call.body, call.out_body, call.key, len(call.raw))
    with watch.during("while waiting for the upstream"):
        outcome = await rt.loop.run(chain, path=call.path, headers=call.headers, stream=call.stream,
                                    attempts=call.attempts, day=call.day,
                                    max_calls=call_budget(rt.loop.max_attempts, call.retries))
    call.count_moves()
    target, resp = outcome.target, outcome.resp
    if target.kind == "tier":
        call.escalations = 1
    answer = Answer(upstream=resp.headers.get("x-tierwise-upstream", resp.upstream or target.upstream.name),
                    model_id=target.model_id, tier=target.tier, answered=target.model_id, headers=resp.headers,
                    status=resp.status)
    if call.stream:
        answer.live = outcome  # pumped by respond; usage, model and stop reason are known as it ends
        return answer
    answer.data = resp.body or b""
    try:
        msg = orjson.loads(answer.data)
        answer.usage = Usage.from_api(msg.get("usage"))
        answer.answered = answered_model(msg) or answer.answered
        answer.stop_reason = msg.get("stop_reason")
        if state.dispatcher.affinity is not None and resp.status == 200:
            state.dispatcher.affinity.remember(message_thinking_keys(msg), answer.answered)
    except (ValueError, TypeError, AttributeError):  # not JSON, or a malformed usage: pass it on unpriced
        state.log.warning("upstream returned a non-JSON body for %s", call.request_id)
    return answer


async def _cascade(state: "ProxyState", rt: "Runtime", call: Call) -> Answer:
    """Cheapest rung first, verify, escalate; the client gets the verified answer (as JSON, or
    re-told as an SSE stream)."""
    assert call.plan is not None and call.body is not None
    result = await cascade_through(rt.loop, state.upstream, state.settings.catalog, call.plan, path=call.path,
                                   headers=call.headers, original=orjson.loads(call.raw), body=call.body,
                                   attempts=call.attempts, day=call.day)
    call.escalations = result.escalations
    msg = result.message
    answered = answered_model(msg) or result.model
    if state.dispatcher.affinity is not None:
        state.dispatcher.affinity.remember(message_thinking_keys(msg), answered)
    return Answer(upstream=result.headers.get("x-tierwise-upstream", state.upstream.name), model_id=answered,
                  tier=result.tier, answered=answered, headers=result.headers, usage=Usage.from_api(msg.get("usage")),
                  prior_usage=result.prior_usage, prior_cost=result.prior_cost_nanos, stop_reason=msg.get("stop_reason"),
                  data=message_events(msg) if call.stream else result.body, events=call.stream, cascaded=True)


def answered_model(msg: dict[str, Any]) -> str | None:
    """The model that actually answered: a server-side ``fallback`` block's target, else ``model``."""
    for block in msg.get("content") or ():
        if isinstance(block, dict) and block.get("type") == "fallback":
            to = (block.get("to") or {}).get("model")
            if to:
                return str(to)
    model = msg.get("model")
    return model if isinstance(model, str) else None
