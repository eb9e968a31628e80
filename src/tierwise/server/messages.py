"""``POST /v1/messages`` as a plain ASGI handler: the proxy's hot path.

Kept free of framework layers: check the limits and the caller's key, read the body, route,
adapt, reserve budget when one applies, send through the attempt loop (retries, fallbacks,
circuit breaker; see ``tierwise.resilience``), pass the answer back unchanged (streams event by
event as they arrive), and queue a ledger row that lists every attempt. Nothing here touches the
disk; with no keys or budgets configured nothing here waits on a database either.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import orjson

from ..affinity import message_thinking_keys
from ..cost import Usage, cost_nanos
from ..dispatch import Plan, prompt_text, validate_body
from ..errors import APIError, InternalServerError, InvalidRequestError, RequestTooLargeError
from ..jsonbody import dumps as dumps_body
from ..resilience.retry import call_budget, client_may_retry
from ..upstream.base import FORWARD_RESPONSE_HEADERS, RATELIMIT_PREFIX
from ..upstream.sse import StreamMeter, format_event

if TYPE_CHECKING:
    from ..resilience import Runtime
    from ..resilience.attempts import Outcome
    from .state import ProxyState

__all__ = ["handle_messages", "read_body", "send_error", "error_headers", "plan_headers", "new_request_id"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

_JSON = (b"content-type", b"application/json")
_AUTH_HEADERS = ("x-api-key", "authorization")


class ClientGone(Exception):
    """The client disconnected before the answer was sent."""


# request ids drawn from os.urandom 256 at a time (one system call per 256 requests); deque.popleft
# is atomic, so threads never share an id; a forked child drops the parent's unused ones
_IDS: collections.deque[str] = collections.deque()
os.register_at_fork(after_in_child=_IDS.clear)


def new_request_id() -> str:
    """``req_tw_`` + 96 random bits from ``os.urandom``: unguessable, so a request id names one answer
    to the key that got it (feedback). Cost against the old counter: bench/input_limits.py."""
    try:
        return _IDS.popleft()
    except IndexError:
        raw = os.urandom(12 * 256).hex()
        _IDS.extend(["req_tw_" + raw[i:i + 24] for i in range(24, len(raw), 24)])
        return "req_tw_" + raw[:24]


# control characters (a header value may not hold them: uvicorn refuses the response) -> space
_NO_CTL = bytes(32 if b < 32 and b != 9 or b == 127 else b for b in range(256))


def _hdr(value: str, limit: int = 512) -> bytes:
    return value[:limit].encode("latin-1", "replace").translate(_NO_CTL)


_NAMES: dict[str, bytes] = {}


def _name(value: str) -> bytes:
    """``_hdr`` for the few names a response repeats (model ids, tiers, router, upstream, task), remembered."""
    out = _NAMES.get(value)
    if out is None:
        out = _hdr(value)
        if len(_NAMES) < 4096:  # task names and passed-through model ids come from callers: keep it bounded
            _NAMES[value] = out
    return out


async def read_body(scope: dict[str, Any], receive: Receive, limit: int) -> bytes:
    for k, v in scope["headers"]:
        if k == b"content-length":
            try:
                n = int(v)
            except ValueError:
                raise InvalidRequestError("content-length: not a number") from None
            if n > limit:
                raise RequestTooLargeError(f"request body of {n:,} bytes exceeds the limit of {limit:,} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientGone("client disconnected before sending the body")
        chunk = msg.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RequestTooLargeError(f"request body exceeds the limit of {limit:,} bytes")
            chunks.append(chunk)
        if not msg.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def error_headers(exc: APIError, request_id: str, *, may_retry: bool = True) -> list[tuple[bytes, bytes]]:
    """The headers of an error answer, besides content-type and length.

    An upstream's error keeps its own headers (``request-id``, ``anthropic-ratelimit-*``, ``retry-after``,
    ``retry-after-ms``, ``anthropic-organization-id``, ``x-should-retry``); tierwise's own errors get
    ``request-id`` = tierwise's id, so the SDKs' ``request_id`` / ``requestID`` are set either way.
    ``x-tierwise-request-id`` is always tierwise's id. ``may_retry=False`` answers ``x-should-retry: false``
    (tierwise already retried: see ``resilience.retry.client_may_retry``)."""
    out = [(b"x-tierwise-request-id", request_id.encode())]
    hdrs = exc.headers
    if "request-id" not in hdrs:
        out.append((b"request-id", request_id.encode()))
    for k, v in hdrs.items():
        if (k in FORWARD_RESPONSE_HEADERS and k != "x-should-retry") or k.startswith(RATELIMIT_PREFIX):
            out.append((k.encode("latin-1"), _hdr(str(v))))
    if not may_retry:
        out.append((b"x-should-retry", b"false"))
    elif "x-should-retry" in hdrs:
        out.append((b"x-should-retry", _hdr(str(hdrs["x-should-retry"]))))
    return out


async def send_error(send: Send, exc: APIError, request_id: str, extra: list[tuple[bytes, bytes]] | None = None,
                     *, may_retry: bool = True) -> None:
    """An error answer: the upstream's error JSON as it sent it, else tierwise's own (see ``error_headers``)."""
    payload = exc.client_body(request_id)
    headers = [_JSON, (b"content-length", str(len(payload)).encode()), *error_headers(exc, request_id, may_retry=may_retry)]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def client_retries(headers: dict[str, str]) -> int:
    """The client's own retry number (``x-stainless-retry-count``, sent by the Python and TypeScript SDKs)."""
    v = headers.get("x-stainless-retry-count")
    if not v:
        return 0
    try:
        return max(0, int(v))
    except ValueError:
        return 0


def plan_headers(plan: Plan, upstream: str, model_id: str | None = None, tier: str | None = None) -> list[tuple[bytes, bytes]]:
    d = plan.decision
    out = [
        (b"x-tierwise-model", _name(model_id or plan.model_id)),
        (b"x-tierwise-router", _name(d.router)),
        (b"x-tierwise-reason", _hdr(d.reason_text())),
        (b"x-tierwise-upstream", _name(upstream)),
    ]
    tier = tier or d.tier
    if tier:
        out.append((b"x-tierwise-tier", _name(tier)))
    if plan.task:
        out.append((b"x-tierwise-task", _name(plan.task)))
    if plan.routed:
        out.append((b"x-tierwise-confidence", b"%.2f" % d.confidence))
    if plan.adapted:
        out.append((b"x-tierwise-adapted", _hdr(",".join(plan.adapted))))
    return out


def _forward_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    out = []
    for k, v in headers.items():
        if k in FORWARD_RESPONSE_HEADERS or k.startswith(RATELIMIT_PREFIX):
            out.append((k.encode("latin-1"), _hdr(v)))
    return out


class _Call:
    """What one request accumulates on its way: for the ledger row and the response headers."""

    __slots__ = ("started", "wall", "request_id", "plan", "requested", "stream", "prompt", "key_id", "attempts",
                 "reservation", "fallbacks", "escalations", "path", "retries")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.wall = time.time()
        self.request_id = new_request_id()
        self.plan: Plan | None = None
        self.requested: str | None = None
        self.stream = False
        self.prompt: str | None = None
        self.key_id: str | None = None
        self.attempts: list[dict[str, Any]] = []
        self.reservation: Any = None
        self.fallbacks = 0
        self.escalations = 0
        self.path = "/v1/messages"  # with the client's query string (``?beta=true``), forwarded as sent
        self.retries = 0            # the client's own retry number (x-stainless-retry-count)

    def calls(self) -> int:
        return sum(1 for a in self.attempts if a["error_type"] != "circuit_open")

    def failed_cost(self, upto: int | None = None) -> int:
        atts = self.attempts if upto is None else self.attempts[:upto]
        return sum(a["cost_nanos"] or 0 for a in atts if a["status"] not in (200, None) or a["error_type"])

    def attempt_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"x-tierwise-attempts", str(self.calls()).encode()), (b"x-tierwise-fallbacks", str(self.fallbacks).encode())]

    def count_moves(self, tier_order: list[str]) -> None:
        """Fallbacks: moves to another target; escalations: moves to a higher tier."""
        seen: list[tuple[str, str]] = []
        for a in self.attempts:
            k = (a["upstream"], a["model"])
            if not seen or seen[-1] != k:
                seen.append(k)
        self.fallbacks = max(0, len(seen) - 1)


def _runtime(state: "ProxyState") -> "Runtime":
    rt = getattr(state, "guard", None)
    if rt is None:
        from ..resilience import Runtime

        rt = Runtime(state.settings, state.upstream, state.ledger)
        state.guard = rt  # type: ignore[attr-defined]
    return rt


async def handle_messages(state: "ProxyState", scope: dict[str, Any], receive: Receive, send: Send) -> None:
    call = _Call()
    rt = _runtime(state)
    dispatcher = state.dispatcher
    upstream_name = state.upstream.name
    watch: asyncio.Task[Any] | None = None
    body: dict[str, Any] | None = None
    try:
        rt.limits.check_headers(scope["headers"])
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        qs = scope.get("query_string")
        if qs:
            call.path = "/v1/messages?" + qs.decode("latin-1")
        call.retries = client_retries(headers)
        key = None
        keys = rt.keys
        if keys is not None:
            await keys.fresh()
            if keys.enforced:
                key = keys.authenticate(headers)
                call.key_id = key.id
                for h in _AUTH_HEADERS:  # the proxy key never travels upstream
                    headers.pop(h, None)
                if key.rpm:
                    await rt.limiter.check(key.id, key.rpm)
        raw = await read_body(scope, receive, state.settings.max_body_bytes)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            call.requested = body["model"]  # the ledger row names it even when the request is refused
        validate_body(body)
        rt.limits.check_body(body)
        call.stream = stream = bool(body.get("stream", False))
        if state.ledger is not None and state.ledger.store_prompts:
            call.prompt = prompt_text(body)
        plan = call.plan = await dispatcher.aplan(body, headers.get("x-tierwise-task"), ab_key=headers.get("x-tierwise-session"),
                                                  betas=headers.get("anthropic-beta"))
        if key is not None and key.restricted:
            plan = call.plan = rt.clamp_to_pool(plan, body, key)
        if plan.add_betas:  # what the routed body uses (e.g. "system" entries in messages) enabled upstream
            headers["anthropic-beta"] = ",".join(filter(None, (headers.get("anthropic-beta"), *plan.add_betas)))
        if not plan.routed and plan.model is not None:
            rt.limits.check_max_tokens(body["max_tokens"], plan.model_id, plan.model.max_output)
        out_body = dumps_body(body) if plan.routed else raw
        scopes = rt.budget_scopes(key, plan.task)
        if scopes:
            call.reservation, plan = await rt.reserve(scopes, plan, body, len(out_body), key)
            if plan is not call.plan:
                call.plan = plan
                out_body = dumps_body(body)
        if plan.decision.cascade is not None:
            await _cascade(state, rt, send, call, plan, orjson.loads(raw), body, headers)
            return
        chain = rt.chain(plan, body, out_body, key, len(raw))
        # One watcher task per request: while we wait for the upstream, and later while a stream is
        # pumped, a client disconnect cancels this task (and with it the upstream call or stream).
        me = asyncio.current_task()
        waiting = [True, False]  # [a disconnect now cancels this task, the client is gone]
        watch = asyncio.get_running_loop().create_task(_wait_disconnect(receive, me, waiting))
        try:
            outcome: "Outcome" = await rt.loop.run(chain, path=call.path, headers=headers, stream=stream,
                                                   attempts=call.attempts,
                                                   max_calls=call_budget(rt.loop.max_attempts, call.retries))
        except asyncio.CancelledError:
            if not waiting[1]:
                raise
            if me is not None:
                me.uncancel()
            raise ClientGone("client disconnected while waiting for the upstream") from None
        finally:
            waiting[0] = False
    except asyncio.CancelledError:
        if watch is not None:
            watch.cancel()
        # cancelled from outside (e.g. the server's graceful-shutdown timeout): the row and the
        # budget reservation must not vanish with the task
        call.count_moves(rt.catalog.tier_order)
        await _finish_error(state, rt, call, 503, "cancelled", upstream_name, body)
        raise
    except ClientGone:
        call.count_moves(rt.catalog.tier_order)
        await _finish_error(state, rt, call, 499, "client_disconnected", upstream_name, body, disconnected=True)
        return
    except APIError as exc:
        if watch is not None:
            watch.cancel()
        call.count_moves(rt.catalog.tier_order)
        if call.attempts:  # the upstream whose error is reported (the primary's 529, not a fallback's refusal)
            reported = next((a for a in call.attempts if a["status"] == exc.status and a["error_type"] == exc.error_type),
                            call.attempts[-1])
            upstream_name = reported["upstream"]
        extra = call.attempt_headers()
        if call.plan is not None:
            extra = plan_headers(call.plan, upstream_name) + extra
        await _finish_error(state, rt, call, exc.status, exc.error_type, upstream_name, body)
        await send_error(send, exc, call.request_id, extra,
                         may_retry=client_may_retry(call.calls(), call.retries, rt.loop.max_attempts))
        return
    except Exception as exc:  # noqa: BLE001 - never a stack trace to the client
        if watch is not None:
            watch.cancel()
        state.log.exception("internal error routing request %s", call.request_id)
        err = InternalServerError(f"tierwise internal error ({type(exc).__name__}); request id {call.request_id}")
        await _finish_error(state, rt, call, 500, "api_error", upstream_name, body)  # the row first, as on every path
        await send_error(send, err, call.request_id)
        return

    call.count_moves(rt.catalog.tier_order)
    target = outcome.target
    resp = outcome.resp
    if target.kind == "tier":
        call.escalations = 1
    upstream_name = resp.headers.get("x-tierwise-upstream", resp.upstream or target.upstream.name)
    out_headers = plan_headers(plan, upstream_name, target.model_id, target.tier)
    out_headers.append((b"x-tierwise-request-id", call.request_id.encode()))
    out_headers.extend(call.attempt_headers())
    out_headers.extend(_forward_headers(resp.headers))

    if not stream:
        watch.cancel()
        data = resp.body or b""
        usage = Usage()
        answered = target.model_id
        stop_reason = None
        try:
            msg = orjson.loads(data)
            usage = Usage.from_api(msg.get("usage"))
            answered = _answered_model(msg) or answered
            stop_reason = msg.get("stop_reason")
            if state.dispatcher.affinity is not None and resp.status == 200:
                state.dispatcher.affinity.remember(message_thinking_keys(msg), answered)
        except (ValueError, TypeError, AttributeError):  # not JSON, or a malformed usage: pass it on unpriced
            state.log.warning("upstream returned a non-JSON body for %s", call.request_id)
        model = state.settings.catalog.get(answered)
        cost = cost_nanos(model, usage) if model is not None else None
        call.attempts[-1]["cost_nanos"] = cost or 0
        failed = call.failed_cost()
        if cost is not None:
            out_headers.append((b"x-tierwise-cost-usd", f"{(cost + failed) / 1e9:.9f}".encode()))
        _record(state, call, usage=usage, answered=answered, status=resp.status, upstream=upstream_name,
                stop_reason=stop_reason, failed=failed)
        await send({"type": "http.response.start", "status": resp.status,
                    "headers": [_JSON, (b"content-length", str(len(data)).encode()), *out_headers]})
        await send({"type": "http.response.body", "body": data})
        await _settle(rt, call, (cost or 0) + failed, state)
        if state.shadow is not None:  # [shadow]: maybe queue a replay; never waits, never fails the call
            state.shadow.offer(request_id=call.request_id, plan=plan, body=body, sent=out_body, answer=data,
                               headers=headers, key_id=call.key_id, status=resp.status)
        return

    await _stream(state, rt, send, watch, waiting, outcome, out_headers, call, upstream_name)
    if state.shadow is not None and call.attempts and not call.attempts[-1]["error_type"]:
        state.shadow.offer(request_id=call.request_id, plan=plan, body=body, sent=out_body, answer=None,
                           headers=headers, key_id=call.key_id, status=call.attempts[-1]["status"] or 200)


async def _wait_disconnect(receive: Receive, owner: "asyncio.Task[Any] | None" = None,
                           waiting: list[bool] | None = None) -> None:
    """Returns when the client disconnects; while ``waiting[0]`` holds, also cancels ``owner``."""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            if owner is not None and waiting is not None and waiting[0]:
                waiting[1] = True
                owner.cancel()
            return


def _answered_model(msg: dict[str, Any]) -> str | None:
    """The model that actually answered: a server-side ``fallback`` block's target, else ``model``."""
    for block in msg.get("content") or ():
        if isinstance(block, dict) and block.get("type") == "fallback":
            to = (block.get("to") or {}).get("model")
            if to:
                return to
    return msg.get("model")


def _record(state: "ProxyState", call: _Call, *, usage: Usage | None, answered: str | None, status: int, upstream: str,
            stop_reason: str | None = None, error_type: str | None = None, failed: int = 0, ttft: float | None = None,
            disconnected: bool = False, prior_usage: Usage | None = None) -> None:
    row = state.dispatcher.row(plan=call.plan, requested=call.requested, request_id=call.request_id, started=call.started,
                               wall=call.wall, usage=usage, answered_model=answered, status=status, error_type=error_type,
                               stream=call.stream, ttft=ttft, upstream=upstream, stop_reason=stop_reason,
                               attempts=call.attempts or None, client_disconnected=disconnected, prompt=call.prompt,
                               key_id=call.key_id, escalations=call.escalations, fallbacks=call.fallbacks,
                               prior_usage=prior_usage)
    if failed:
        # every attempt is paid for: the row's cost is the whole request's, failed attempts included
        row["cost_nanos"] = (row["cost_nanos"] or 0) + failed
    state.record(row)


async def _settle(rt: "Runtime", call: _Call, total: int, state: "ProxyState") -> None:
    if call.reservation is None:
        return
    try:
        await rt.budgets.settle(call.reservation, total)
    except Exception:  # noqa: BLE001 - the answer is already sent; the spend must still not vanish silently
        state.log.exception("could not settle the budget reservation of %s", call.request_id)


async def _finish_error(state: "ProxyState", rt: "Runtime", call: _Call, status: int, error_type: str, upstream: str,
                        body: dict[str, Any] | None, disconnected: bool = False) -> None:
    # the request failed: everything it paid for is a failed cost (a cascade's answered rungs included)
    failed = sum(a["cost_nanos"] or 0 for a in call.attempts)
    _record(state, call, usage=None, answered=None, status=status, error_type=error_type, upstream=upstream,
            failed=failed, disconnected=disconnected)
    await _settle(rt, call, failed, state)


async def _stream(state: "ProxyState", rt: "Runtime", send: Send, watch: "asyncio.Task[Any]", waiting: list[bool],
                  outcome: "Outcome", out_headers: list[tuple[bytes, bytes]], call: _Call, upstream_name: str) -> None:
    """Pass the stream on event by event, in this task: while it runs, a client disconnect makes the
    watcher cancel this task (``waiting[0]``, as while waiting for the upstream), which ends the pump."""
    resp = outcome.resp
    meter = outcome.meter or StreamMeter()
    result: list[Any] = [200, None]  # status and error type to record, set by the pump
    disconnected = False
    me = asyncio.current_task()
    waiting[0] = True
    recorded = [False]

    def finish() -> None:
        """The row, built and journaled once: before the stream's last byte reaches the client
        (``_pump`` calls it ahead of the chunk holding message_stop, an error event or the end),
        else when the stream ends otherwise (a disconnect, a cancellation)."""
        if recorded[0]:
            return
        recorded[0] = True
        status, error_type = result
        if meter.error_type and error_type is None:
            error_type = meter.error_type
            status = 529 if meter.error_type == "overloaded_error" else 500
        if disconnected and not meter.completed:
            status, error_type = 499, error_type or "client_disconnected"
        answered = meter.priced_model or outcome.target.model_id
        if meter.signatures and state.dispatcher.affinity is not None:
            state.dispatcher.affinity.remember(meter.signatures, answered)
        model = state.settings.catalog.get(answered)
        cost = cost_nanos(model, meter.usage) if model is not None else 0
        last = call.attempts[-1]
        last["cost_nanos"] = cost
        if status != 200:
            last["status"], last["error_type"] = status, error_type
        failed = call.failed_cost(len(call.attempts) - 1)
        total[0] = cost + failed
        _record(state, call, usage=meter.usage, answered=answered, status=status, error_type=error_type,
                upstream=upstream_name, stop_reason=meter.stop_reason, failed=failed, ttft=meter.first_token_at,
                disconnected=disconnected)

    total = [0]
    try:
        if watch.done():  # the client left between the upstream's answer and now
            disconnected = True
        else:
            await _pump(send, resp, outcome.first, meter, out_headers, call.request_id, result, finish)
            watch.cancel()
    except asyncio.CancelledError:
        if not waiting[1]:
            # cancelled from outside (e.g. the server's graceful-shutdown timeout): stop the watcher too
            watch.cancel()
            if not meter.completed:
                result[:] = [503, "cancelled"]
            raise
        if me is not None:
            me.uncancel()
        disconnected = True
    except OSError:
        watch.cancel()
        disconnected = True
    except Exception as exc:  # noqa: BLE001 - the row must still be written
        watch.cancel()
        result[:] = [500, "api_error"]
        state.log.error("stream %s failed: %r", call.request_id, exc)
    finally:
        waiting[0] = False
        await resp.aclose()
        finish()
        await _settle(rt, call, total[0], state)


async def _pump(send: Send, resp: Any, first: bytes | None, meter: StreamMeter, out_headers: list[tuple[bytes, bytes]],
                request_id: str, result: list[Any], finish: Callable[[], None] = lambda: None) -> None:
    """Send the stream's start, its chunks as they arrive (metered), and its end; ``result`` gets the
    status and error type to record (an upstream failure mid-stream becomes an ``error`` event: nothing
    is replayed). ``finish`` (the ledger row) runs before the last byte: ahead of the chunk that
    completes the message, of an error event, or of the end."""
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"), *out_headers]})
    try:
        if first:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        assert resp.chunks is not None
        async for chunk in resp.chunks:
            meter.feed(chunk)
            if meter.completed:
                finish()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except APIError as exc:
        # The stream already reached the client: never replay, send an Anthropic error event.
        result[:] = [exc.status, exc.error_type]
        finish()
        await send({"type": "http.response.body", "more_body": True, "body": format_event(
            "error", {"type": "error", "error": {"type": exc.error_type, "message": exc.message},
                      "request_id": request_id})})
    else:
        if not meter.completed and meter.error_type is None:
            # the upstream ended the stream early without saying why: tell the client
            result[:] = [502, "api_error"]
            finish()
            await send({"type": "http.response.body", "more_body": True, "body": format_event(
                "error", {"type": "error", "error": {"type": "api_error", "message":
                          "upstream ended the stream before message_stop"}, "request_id": request_id})})
    finish()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _cascade(state: "ProxyState", rt: "Runtime", send: Send, call: _Call, plan: Plan, original: dict[str, Any],
                   body: dict[str, Any], headers: dict[str, str]) -> None:
    """Cheapest rung first, verify, escalate; each rung goes through the attempt loop (retries, breaker).

    The client gets the verified answer (as JSON, or re-told as an SSE stream); the row lists every
    rung and counts the cost of every failed one."""
    from ..cascade import run_cascade
    from ..resilience.fallback import Target
    from ..upstream.sse import message_events

    catalog = state.settings.catalog

    async def send_rung(data: bytes, model_id: str) -> Any:
        target = Target(state.upstream, model_id, catalog.tier_of(model_id), "primary", data, [])
        outcome = await rt.loop.run([target], path=call.path, headers=headers, stream=False, attempts=call.attempts)
        try:  # priced now: if a later rung fails, this paid answer still counts
            usage = Usage.from_api(orjson.loads(outcome.resp.body or b"{}").get("usage"))
            model = catalog.get(model_id)
            call.attempts[-1]["cost_nanos"] = cost_nanos(model, usage) if model is not None else 0
        except (ValueError, TypeError, AttributeError):
            pass
        return outcome.resp

    upstream_name = state.upstream.name
    try:
        result = await run_cascade(send_rung, catalog, plan.decision.cascade, original, body)
    except APIError as exc:
        call.count_moves(catalog.tier_order)
        await _finish_error(state, rt, call, exc.status, exc.error_type, upstream_name, body)
        await send_error(send, exc, call.request_id, plan_headers(plan, upstream_name) + call.attempt_headers(),
                         may_retry=client_may_retry(call.calls(), call.retries, rt.loop.max_attempts))
        return
    # annotate the successful HTTP attempts (one per rung, in order) with the verification and cost
    ok_attempts = [a for a in call.attempts if a.get("status") == 200 and not a.get("error_type")]
    for http, rung in zip(ok_attempts, result.attempts):
        http.update(cost_nanos=rung["cost_nanos"], input_tokens=rung["input_tokens"], output_tokens=rung["output_tokens"],
                    verified=rung["verified"], failed_check=rung["failed"])
    call.escalations = result.escalations
    usage = Usage.from_api(result.message.get("usage"))
    answered = _answered_model(result.message) or result.model
    if state.dispatcher.affinity is not None:
        state.dispatcher.affinity.remember(message_thinking_keys(result.message), answered)
    upstream_name = result.headers.get("x-tierwise-upstream", upstream_name)
    failed = call.failed_cost() + result.prior_cost_nanos
    model = catalog.get(answered)
    cost = cost_nanos(model, usage) if model is not None else None
    out_headers = plan_headers(plan, upstream_name, answered, result.tier)
    out_headers += [(b"x-tierwise-request-id", call.request_id.encode()),
                    (b"x-tierwise-escalations", str(result.escalations).encode()), *call.attempt_headers(),
                    *_forward_headers(result.headers)]
    if cost is not None:
        out_headers.append((b"x-tierwise-cost-usd", f"{(cost + failed) / 1e9:.9f}".encode()))
    _record(state, call, usage=usage, answered=answered, status=200, upstream=upstream_name,
            stop_reason=result.message.get("stop_reason"), failed=failed, prior_usage=result.prior_usage,
            ttft=time.perf_counter() if call.stream else None)
    if call.stream:
        data = message_events(result.message)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"), *out_headers]})
    else:
        data = result.body
        await send({"type": "http.response.start", "status": 200,
                    "headers": [_JSON, (b"content-length", str(len(data)).encode()), *out_headers]})
    await send({"type": "http.response.body", "body": data})
    await _settle(rt, call, (cost or 0) + failed, state)
