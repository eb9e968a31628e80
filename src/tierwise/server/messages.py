"""``POST /v1/messages`` as a plain ASGI handler: the proxy's hot path.

Kept free of framework layers: read the body, route, adapt, forward through the one upstream
client, pass the answer back unchanged (streams event by event as they arrive), and queue a
ledger row. Nothing here touches the disk.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import orjson

from ..cost import Usage, cost_usd
from ..dispatch import Plan, prompt_text, validate_body
from ..errors import APIError, InternalServerError, InvalidRequestError, RequestTooLargeError, error_body
from ..upstream.base import FORWARD_RESPONSE_HEADERS, RATELIMIT_PREFIX
from ..upstream.sse import StreamMeter, format_event

if TYPE_CHECKING:
    from .state import ProxyState

__all__ = ["handle_messages", "read_body", "send_error", "plan_headers"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

_JSON = (b"content-type", b"application/json")


def new_request_id() -> str:
    return "req_tw_" + os.urandom(12).hex()


def _hdr(value: str, limit: int = 512) -> bytes:
    return value[:limit].encode("latin-1", "replace")


async def read_body(scope: dict[str, Any], receive: Receive, limit: int) -> bytes:
    for k, v in scope["headers"]:
        if k == b"content-length":
            try:
                if int(v) > limit:
                    raise RequestTooLargeError(f"request body of {int(v):,} bytes exceeds the limit of {limit:,} bytes")
            except ValueError:
                raise InvalidRequestError("content-length: not a number") from None
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise asyncio.CancelledError("client disconnected before sending the body")
        chunk = msg.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RequestTooLargeError(f"request body exceeds the limit of {limit:,} bytes")
            chunks.append(chunk)
        if not msg.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_error(send: Send, exc: APIError, request_id: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = exc.to_body(request_id)
    headers = [_JSON, (b"content-length", str(len(payload)).encode()), (b"x-tierwise-request-id", request_id.encode())]
    for h in ("retry-after", "retry-after-ms", "x-should-retry"):
        if h in exc.headers:
            headers.append((h.encode(), _hdr(exc.headers[h])))
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def plan_headers(plan: Plan, upstream: str) -> list[tuple[bytes, bytes]]:
    d = plan.decision
    out = [
        (b"x-tierwise-model", _hdr(plan.model_id)),
        (b"x-tierwise-router", _hdr(d.router)),
        (b"x-tierwise-reason", _hdr(d.reason_text())),
        (b"x-tierwise-upstream", _hdr(upstream)),
    ]
    if d.tier:
        out.append((b"x-tierwise-tier", _hdr(d.tier)))
    if plan.task:
        out.append((b"x-tierwise-task", _hdr(plan.task)))
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


async def handle_messages(state: "ProxyState", scope: dict[str, Any], receive: Receive, send: Send) -> None:
    started = time.perf_counter()
    wall = time.time()
    request_id = new_request_id()
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    plan: Plan | None = None
    requested: str | None = None
    body: dict[str, Any] | None = None
    dispatcher = state.dispatcher
    upstream_name = state.upstream.name
    try:
        raw = await read_body(scope, receive, state.settings.max_body_bytes)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
        validate_body(body)
        requested = body["model"]
        prompt = prompt_text(body) if state.ledger is not None and state.ledger.store_prompts else None
        plan = dispatcher.plan(body, headers.get("x-tierwise-task"))
        stream = bool(body.get("stream", False))
        out_body = orjson.dumps(body) if plan.routed else raw
        resp = await state.upstream.send("/v1/messages", out_body, headers=headers, stream=stream, model=plan.model_id)
    except asyncio.CancelledError:
        raise
    except APIError as exc:
        state.record(dispatcher.row(plan=plan, requested=requested, request_id=request_id, started=started, wall=wall,
                                    usage=None, answered_model=None, status=exc.status, error_type=exc.error_type,
                                    stream=bool(isinstance(body, dict) and body.get("stream")), upstream=upstream_name))
        await send_error(send, exc, request_id, plan_headers(plan, upstream_name) if plan else None)
        return
    except Exception as exc:  # noqa: BLE001 - never a stack trace to the client
        state.log.exception("internal error routing request %s", request_id)
        err = InternalServerError(f"tierwise internal error ({type(exc).__name__}); request id {request_id}")
        await send_error(send, err, request_id)
        state.record(dispatcher.row(plan=plan, requested=requested, request_id=request_id, started=started, wall=wall,
                                    usage=None, answered_model=None, status=500, error_type="api_error", upstream=upstream_name))
        return

    upstream_name = resp.headers.get("x-tierwise-upstream", resp.upstream or upstream_name)
    out_headers = plan_headers(plan, upstream_name)
    out_headers.append((b"x-tierwise-request-id", request_id.encode()))
    out_headers.extend(_forward_headers(resp.headers))

    if not stream:
        data = resp.body or b""
        usage = Usage()
        answered = plan.model_id
        stop_reason = None
        try:
            msg = orjson.loads(data)
            usage = Usage.from_api(msg.get("usage"))
            answered = _answered_model(msg) or answered
            stop_reason = msg.get("stop_reason")
        except (orjson.JSONDecodeError, AttributeError):
            state.log.warning("upstream returned a non-JSON body for %s", request_id)
        cost = cost_usd(state.settings.catalog, answered, usage, when=None)
        if cost is not None:
            out_headers.append((b"x-tierwise-cost-usd", f"{cost:.9f}".encode()))
        state.record(dispatcher.row(plan=plan, requested=requested, request_id=request_id, started=started, wall=wall,
                                    usage=usage, answered_model=answered, status=resp.status, upstream=upstream_name,
                                    stop_reason=stop_reason, prompt=prompt))
        await send({"type": "http.response.start", "status": resp.status,
                    "headers": [_JSON, (b"content-length", str(len(data)).encode()), *out_headers]})
        await send({"type": "http.response.body", "body": data})
        return

    await _stream(state, send, receive, resp, plan, out_headers, request_id, started, wall, requested, upstream_name, prompt)


def _answered_model(msg: dict[str, Any]) -> str | None:
    """The model that actually answered: a server-side ``fallback`` block's target, else ``model``."""
    for block in msg.get("content") or ():
        if isinstance(block, dict) and block.get("type") == "fallback":
            to = (block.get("to") or {}).get("model")
            if to:
                return to
    return msg.get("model")


async def _stream(state: "ProxyState", send: Send, receive: Receive, resp: Any, plan: Plan,
                  out_headers: list[tuple[bytes, bytes]], request_id: str, started: float, wall: float,
                  requested: str | None, upstream_name: str, prompt: str | None) -> None:
    meter = StreamMeter()
    status = 200
    error_type: str | None = None

    async def pump() -> None:
        nonlocal status, error_type
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"), *out_headers]})
        try:
            async for chunk in resp.chunks:
                meter.feed(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except APIError as exc:
            # The stream already reached the client: never replay, send an Anthropic error event.
            status, error_type = exc.status, exc.error_type
            kind = exc.error_type if exc.error_type != "api_error" or exc.status == 500 else "api_error"
            await send({"type": "http.response.body", "more_body": True, "body": format_event(
                "error", {"type": "error", "error": {"type": kind, "message": exc.message}, "request_id": request_id})})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def watch() -> None:
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return

    disconnected = False
    pump_task = asyncio.ensure_future(pump())
    watch_task = asyncio.ensure_future(watch())
    try:
        done, _ = await asyncio.wait({pump_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
        if pump_task in done:
            watch_task.cancel()
            exc = pump_task.exception()
            if exc is not None and not isinstance(exc, OSError):
                status, error_type = 500, "api_error"
                state.log.error("stream %s failed: %r", request_id, exc)
            elif isinstance(exc, OSError):
                disconnected = True
        else:
            disconnected = True
            pump_task.cancel()
            try:
                await pump_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
    finally:
        await resp.aclose()
        if meter.error_type and error_type is None:
            error_type = meter.error_type
            status = 529 if meter.error_type == "overloaded_error" else 500
        if disconnected and not meter.completed:
            status, error_type = 499, error_type or "client_disconnected"
        state.record(state.dispatcher.row(
            plan=plan, requested=requested, request_id=request_id, started=started, wall=wall, usage=meter.usage,
            answered_model=meter.priced_model or plan.model_id, status=status, error_type=error_type, stream=True,
            ttft=meter.first_token_at, upstream=upstream_name, stop_reason=meter.stop_reason,
            client_disconnected=disconnected, prompt=prompt))


def error_response_body(kind: str, message: str, request_id: str | None = None) -> bytes:
    return error_body(kind, message, request_id)
