"""The respond phase: the answer to the client, as JSON or as a stream (a live one pumped by
``stream.LiveStream``, or a cascade's verified answer re-told as events), and a failure as the
API's error JSON. Each path accounts for the call once (``account``)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Awaitable

from ..errors import APIError, InternalServerError
from ..resilience.retry import client_may_retry
from . import account
from .call import Answer, Call
from .headers import JSON, SSE, Headers, forward_headers, plan_headers
from .stream import LiveStream
from .wire import ClientGone, DisconnectWatch, Send, send_error

if TYPE_CHECKING:
    from ..resilience import Runtime
    from .state import ProxyState

__all__ = ["respond", "respond_failure"]


def _headers(call: Call, answer: Answer) -> Headers:
    assert call.plan is not None
    out = plan_headers(call.plan, answer.upstream, answer.model_id, answer.tier)
    out.append((b"x-tierwise-request-id", call.request_id.encode()))
    if answer.cascaded:
        out.append((b"x-tierwise-escalations", str(call.escalations).encode()))
    out.extend(call.attempt_headers())
    out.extend(forward_headers(answer.headers))
    return out


def respond(state: "ProxyState", rt: "Runtime", send: Send, call: Call, answer: Answer,
            watch: DisconnectWatch) -> Awaitable[None]:
    """The coroutine that sends ``answer``: a live stream's own (so its chunks pass through no
    extra frame), else the whole answer's."""
    headers = _headers(call, answer)
    if answer.live is not None:
        return LiveStream(state, call, answer).pass_on(rt, send, watch, headers)
    return _whole(state, rt, send, call, answer, watch, headers)


async def _whole(state: "ProxyState", rt: "Runtime", send: Send, call: Call, answer: Answer, watch: DisconnectWatch,
                 headers: Headers) -> None:
    """JSON, or a cascade's verified answer re-told as one SSE body."""
    watch.cancel()
    if answer.events:
        answer.ttft = time.perf_counter()
    rec = account.answered(state, call, answer)  # the row first, then the answer
    if rec.cost_nanos is not None:  # the row's cost, to the nano-dollar
        headers.append((b"x-tierwise-cost-usd", f"{rec.cost_nanos / 1e9:.9f}".encode()))
    data = answer.data
    start = [*SSE, *headers] if answer.events else [JSON, (b"content-length", str(len(data)).encode()), *headers]
    await send({"type": "http.response.start", "status": answer.status, "headers": start})
    await send({"type": "http.response.body", "body": data})
    if call.reservation is not None:
        await account.settle(state, rt, call, rec.cost_nanos or 0)
    account.offer_shadow(state, call, answer)


async def respond_failure(state: "ProxyState", rt: "Runtime", send: Send, call: Call, exc: BaseException) -> None:
    """A request that ended without an answer: cancelled (re-raised by the caller), the client gone,
    refused (an ``APIError``: the upstream's or tierwise's own) or an internal error (a 500, never a
    stack trace). The row first, as on every path; then the error answer, when there is a client."""
    call.count_moves()
    upstream = state.upstream.name
    reply: APIError | None = None
    extra: Headers = []
    if isinstance(exc, asyncio.CancelledError):
        # cancelled from outside (e.g. the server's graceful-shutdown timeout): the row and the
        # budget reservation must not vanish with the task
        status, error_type = 503, "cancelled"
    elif isinstance(exc, ClientGone):
        status, error_type = 499, "client_disconnected"
    elif isinstance(exc, APIError):
        status, error_type, reply = exc.status, exc.error_type, exc
        if call.attempts:  # the upstream whose error is reported (the primary's 529, not a fallback's refusal)
            reported = next((a for a in call.attempts if a.status == exc.status and a.error_type == exc.error_type),
                            call.attempts[-1])
            upstream = reported.upstream
        extra = call.attempt_headers()
        if call.plan is not None:
            extra = plan_headers(call.plan, upstream) + extra
    else:
        state.log.error("internal error routing request %s", call.request_id, exc_info=exc)
        status, error_type = 500, "api_error"
        reply = InternalServerError(f"tierwise internal error ({type(exc).__name__}); request id {call.request_id}")
    paid = account.failed(state, call, status, error_type, upstream, disconnected=isinstance(exc, ClientGone))
    if call.reservation is not None:
        await account.settle(state, rt, call, paid)
    if reply is None:
        return
    if reply is exc:
        await send_error(send, reply, call.request_id, extra,
                         may_retry=client_may_retry(call.calls(), call.retries, rt.loop.max_attempts))
    else:
        await send_error(send, reply, call.request_id)
