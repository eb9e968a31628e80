"""``POST /v1/messages`` as a plain ASGI handler: the proxy's hot path, as phases.

1. **admit** (``admit.admit``): the input limits, the caller's proxy key, the body read and checked;
2. **plan** (``admit.plan``): route and adapt, the key's pool of tiers, the budget reservation;
3. **execute** (``execute.execute``): a single call through the attempt loop (retries, fallbacks,
   circuit breaker; see ``tierwise.resilience``) or a cascade (``tierwise.cascade``): one ``Answer``;
4. **respond** (``respond.respond``): the answer passed back unchanged, as JSON or as a stream
   (event by event as it arrives), or the error (``respond.respond_failure``);
5. **account** (``account``): one ledger row listing every attempt, and the budget settled.

Nothing here touches the disk; with no keys or budgets configured nothing here waits on a database either.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .admit import admit, plan
from .call import Call
from .execute import execute
from .headers import error_headers, header_value, plan_headers
from .respond import respond, respond_failure
from .wire import ClientGone, DisconnectWatch, Receive, Send, new_request_id, read_body, send_error

if TYPE_CHECKING:
    from .state import ProxyState

__all__ = ["handle_messages", "read_body", "send_error", "error_headers", "plan_headers", "new_request_id",
           "header_value", "ClientGone"]


async def handle_messages(state: "ProxyState", scope: dict[str, Any], receive: Receive, send: Send) -> None:
    call = Call()
    rt = state.guard
    watch: DisconnectWatch | None = None
    try:
        await admit(state, rt, call, scope, receive)
        await plan(state, rt, call)
        watch = DisconnectWatch(receive)
        answer = await execute(state, rt, call, watch)
    except (asyncio.CancelledError, Exception) as exc:
        if watch is not None:
            watch.cancel()
        await respond_failure(state, rt, send, call, exc)
        if isinstance(exc, asyncio.CancelledError):
            raise
        return
    await respond(state, rt, send, call, answer, watch)
