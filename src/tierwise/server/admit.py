"""The first two phases of a request. ``admit``: the input limits, the caller's key (the one key
admission, ``Runtime.admit``, shared with count_tokens, batches, files and models), the body read
and checked, and whether the ledger can keep one more row. ``plan``: where it goes (routing, the key's pool of tiers, capability betas), the body
to send, and the budget reservation (which may move it to a cheaper tier)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..dispatch import prompt_text, validate_body
from ..errors import InvalidRequestError
from ..jsonbody import dumps as dumps_body
from .call import Call
from .wire import Receive, client_retries, read_body

if TYPE_CHECKING:
    from ..resilience import Runtime
    from .state import ProxyState

__all__ = ["admit", "plan"]


async def admit(state: "ProxyState", rt: "Runtime", call: Call, scope: dict[str, Any], receive: Receive) -> None:
    rt.limits.check_headers(scope["headers"])
    call.headers = headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    qs = scope.get("query_string")
    if qs:
        call.path = "/v1/messages?" + qs.decode("latin-1")
    call.retries = client_retries(headers)
    # the proxy key never travels upstream (no coroutine at all when keys are off: the common case)
    call.key = key = await rt.authenticate(headers) if rt.keys is not None else None
    if key is not None:
        call.key_id = key.id  # named in the row even when its rate limit refuses the call
        await rt.count_request(key)
    call.raw = raw = await read_body(scope, receive, state.settings.max_body_bytes)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        call.requested = body["model"]  # the ledger row names it even when the request is refused
    call.body = validate_body(body)
    rt.limits.check_body(body)
    call.stream = bool(body.get("stream", False))
    if state.ledger is not None and state.ledger.store_prompts:
        call.prompt = prompt_text(body)
    if rt.ledger is not None:
        # a full disk with memory at its cap: 529 before any upstream call, a single call's or a
        # cascade's first rung (ledger/writer.py)
        rt.ledger.admit()


async def plan(state: "ProxyState", rt: "Runtime", call: Call) -> None:
    body, headers, key = call.body, call.headers, call.key
    assert body is not None
    p = call.plan = await state.dispatcher.aplan(body, headers.get("x-tierwise-task"),
                                                 ab_key=headers.get("x-tierwise-session"),
                                                 betas=headers.get("anthropic-beta"))
    if key is not None and key.restricted:
        p = call.plan = rt.clamp_to_pool(p, body, key)
    if p.add_betas:  # what the routed body uses (e.g. "system" entries in messages) enabled upstream
        headers["anthropic-beta"] = ",".join(filter(None, (headers.get("anthropic-beta"), *p.add_betas)))
    if not p.routed and p.model is not None:
        rt.limits.check_max_tokens(body["max_tokens"], p.model_id, p.model.max_output)
    call.out_body = dumps_body(body) if p.routed else call.raw
    scopes = rt.budget_scopes(key, p.task)
    if scopes:
        call.reservation, moved = await rt.reserve(scopes, p, body, len(call.out_body), key)
        if moved is not p:  # downgraded to stay within the budget: the body was re-adapted
            call.plan = moved
            call.out_body = dumps_body(body)
