"""The proxy application: a plain-ASGI hot path for ``POST /v1/messages`` in front of a small
Starlette app for everything else (models, count_tokens, health)."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..config import Settings
from ..dispatch import Dispatcher, validate_body
from ..errors import APIError, InternalServerError, InvalidRequestError, LoopDetectedError, NotFoundError
from ..jsonbody import dumps as dumps_body
from ..ledger import Ledger
from ..upstream import Upstream, build_upstream
from ..upstream.base import FORWARD_RESPONSE_HEADERS, HOP_HEADER, HOP_ID, MAX_HOPS, RATELIMIT_PREFIX
from .access import OPERATOR
from .batches import batch_routes
from .feedback_routes import evidence_routes
from .files_api import file_routes
from .messages import error_headers, handle_messages, header_value, new_request_id, read_body, send_error
from .models_api import model_routes
from .state import ProxyState

__all__ = ["create_app", "ProxyApp"]


def _error_response(exc: APIError, request_id: str | None = None) -> Response:
    rid = request_id or new_request_id()
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in error_headers(exc, rid)}  # as send_error
    return Response(exc.client_body(rid), status_code=exc.status, media_type="application/json", headers=headers)


_HOP = HOP_HEADER.encode()


def _loop(scope: dict[str, Any]) -> LoopDetectedError | None:
    """A request this very process sent upstream (its ``x-tierwise-hop`` names us), or one that went
    through more tierwise proxies than any sane chain has: a loop, answered 508 at once."""
    for k, v in scope["headers"]:
        if k == _HOP:
            hops = [h.strip() for h in v.decode("latin-1").split(",")]
            if HOP_ID in hops or len(hops) >= MAX_HOPS:
                return LoopDetectedError(
                    f"request loop: this tierwise proxy received a request it sent upstream itself ({len(hops)} "
                    f"hop(s) in {HOP_HEADER}). Its upstream URL points back at the proxy: set TIERWISE_UPSTREAM_URL "
                    "(or [upstream] url) to the real API, e.g. https://api.anthropic.com; ANTHROPIC_BASE_URL in the "
                    "proxy's environment is read as its upstream", headers={"x-should-retry": "false"})
    return None


@functools.cache
def _openapi_document() -> bytes:
    """The hand-written OpenAPI 3.1 document (server/openapi.json), read once on first request."""
    return Path(__file__).with_name("openapi.json").read_bytes()


class ProxyApp:
    """ASGI callable: ``/v1/messages`` handled directly, the rest by Starlette."""

    def __init__(self, state: ProxyState, inner: Starlette) -> None:
        self.state = state
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (loop := _loop(scope)) is not None:
            await send_error(send, loop, new_request_id(), may_retry=False)
            return
        if scope["type"] == "http" and scope["path"] == "/v1/messages":
            if scope["method"] != "POST":
                await send_error(send, APIError("method not allowed: use POST /v1/messages", status=405), new_request_id())
                return
            state = self.state
            state.inflight += 1
            try:
                await handle_messages(state, scope, receive, send)
            finally:
                state.inflight -= 1
            return
        await self.inner(scope, receive, send)


def create_app(settings: Settings, *, upstream: Upstream | None = None, ledger: Ledger | None | bool = True) -> ProxyApp:
    """Build the proxy. ``ledger=True`` opens the configured ledger; ``None``/``False`` runs without one."""
    if ledger is True:
        ledger = Ledger.from_settings(settings, serve_while_down=True)  # a replica starts while the database is down
    elif ledger is False:
        ledger = None
    upstream = upstream or build_upstream(settings)
    # the runtime (retries, keys, budgets), metrics, shadow and evidence are built by ProxyState itself
    state = ProxyState(settings, Dispatcher(settings, upstream=upstream), upstream, ledger)
    evidence = state.evidence  # feedback, /metrics, /dashboard, registry reload + monitor
    access = evidence.access  # who may reach which route (tierwise.server.access)

    def _lower(request: Request) -> dict[str, str]:
        return {k.lower(): v for k, v in request.headers.items()}

    async def count_tokens(request: Request) -> Response:
        rid = new_request_id()
        try:
            # the caller's key first: nothing is routed (or listed in an error) for a caller without one;
            # then the key's rules as on /v1/messages: its requests per minute, its pool of tiers
            headers = {k.lower(): v for k, v in request.headers.items()}
            key = await state.guard.admit(headers)
            raw = await read_body(request.scope, request.receive, settings.max_body_bytes)
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
            if not isinstance(body, dict) or not isinstance(body.get("model"), str):
                raise InvalidRequestError("model: field required")
            validate_body(dict(body, max_tokens=body.get("max_tokens", 1)))
            plan = state.dispatcher.plan(body, request.headers.get("x-tierwise-task"), betas=headers.get("anthropic-beta"))
            if key is not None and key.restricted:
                plan = state.guard.clamp_to_pool(plan, body, key)
            query = request.scope.get("query_string")
            path = "/v1/messages/count_tokens" + ("?" + query.decode("latin-1") if query else "")
            resp = await state.upstream.send(path, dumps_body(body), headers=headers, stream=False, model=plan.model_id)
        except APIError as exc:
            return _error_response(exc, rid)
        out = {k: header_value(v).decode("latin-1") for k, v in resp.headers.items()
               if k in FORWARD_RESPONSE_HEADERS or k.startswith(RATELIMIT_PREFIX)}  # the upstream's request-id...
        out.setdefault("request-id", rid)
        out.update({"x-tierwise-model": header_value(plan.model_id).decode("latin-1"), "x-tierwise-request-id": rid,
                    "x-tierwise-upstream": header_value(resp.headers.get("x-tierwise-upstream", state.upstream.name)).decode("latin-1")})
        return Response(resp.body, status_code=resp.status, media_type="application/json", headers=out)

    async def openapi(request: Request) -> Response:
        try:
            await access.check(_lower(request), OPERATOR, what="/openapi.json")
        except APIError as exc:
            return _error_response(exc)
        return Response(_openapi_document(), media_type="application/json")

    async def health(request: Request) -> Response:
        # liveness for anyone (a load balancer's probe has no key); the details only for an operator
        try:
            who = await access.check(_lower(request), OPERATOR, what="/healthz details", required=False)
        except APIError as exc:
            return _error_response(exc)
        h = health_details()
        status = "degraded" if h["degraded"] else "ok"  # still serving: a degraded replica answers every call
        if not who.operator:
            return JSONResponse({"status": status})
        return JSONResponse({"status": status, "upstream": state.upstream.name,
                             "ledger": settings.ledger_url.split("://")[0] if state.ledger else None,
                             "recorded": state.recorded, "ledger_state": h["ledger"], "stores": h["stores"]})

    def health_details() -> dict[str, Any]:
        """degraded: the ledger database or its journal, or a shared store (Redis, the budget database), is failing."""
        led = state.ledger
        stores = state.guard.stores()
        degraded = bool((led is not None and led.writer.degraded) or state.guard.degraded)
        return {"degraded": degraded, "ledger": led.status() if led is not None else None, "stores": stores}

    if state.metrics is not None:
        state.metrics.watch_health(health_details)

    async def not_found(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return _error_response(NotFoundError(f"no route {request.method} {request.url.path}"))
        if exc.status_code == 405:
            return _error_response(APIError(f"method {request.method} not allowed on {request.url.path}", status=405))
        return _error_response(APIError(str(exc.detail), status=exc.status_code))

    async def internal_error(request: Request, exc: Exception) -> Response:  # never a plain-text 500
        rid = new_request_id()
        return _error_response(InternalServerError(f"tierwise internal error ({type(exc).__name__}); request id {rid}"), rid)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if state.shadow is not None:
                await state.shadow.aclose()
            await state.upstream.aclose()
            await state.guard.aclose()
            if state.ledger is not None:
                state.ledger.close()

    inner = Starlette(
        routes=[
            *model_routes(state, _error_response),       # models.list / models.retrieve (server/models_api.py)
            *batch_routes(state, _error_response, new_request_id),  # Message Batches (server/batches.py)
            *file_routes(state, _error_response, new_request_id),   # Files (server/files_api.py)
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *evidence_routes(evidence),
        ],
        exception_handlers={HTTPException: not_found, Exception: internal_error},
        lifespan=lifespan,
    )
    return ProxyApp(state, inner)
