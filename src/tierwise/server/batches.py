"""``/v1/messages/batches``: Message Batches forwarded to the upstream, routed and accounted.

- create: each request whose ``params.model`` is ``auto`` or ``tierwise/<task>`` is routed and
  adapted as a live request is (the same Dispatcher, the caller key's pool of tiers); explicit
  model ids and everything else go on untouched. Where each request went is kept in the ledger
  (``batch_requests``, migration 5).
- retrieve / list / cancel / delete: forwarded; a batch's ``results_url`` points back at this proxy
  (the SDKs fetch results from it).
- results (JSONL): streamed to the client as they arrive; each result becomes one ledger row
  priced at the batch discount, attributed to the key and task that created it, exactly once
  however often the results are fetched (the result claims its ``batch_requests`` row in the
  transaction that writes its ``calls`` row).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterable

import orjson
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..admission.keys import check_model_allowed
from ..cost import Usage
from ..dispatch import AUTO, TASK_PREFIX, validate_body
from ..errors import APIError, InvalidRequestError, NotFoundError
from ..ledger.batches_schema import batch_requests
from ..ledger.schema import calls
from ..record import CallRecord
from .messages import read_body

if TYPE_CHECKING:
    from .state import ProxyState

__all__ = ["batch_routes", "record_results"]

log = logging.getLogger("tierwise.batches")

_FORWARD_BACK = ("content-type", "request-id", "retry-after", "anthropic-organization-id", "content-disposition")
_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
           "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
           "timeout_error": 504, "overloaded_error": 529}
_CHUNK_ROWS = 200  # results written per ledger transaction while the JSONL streams by


def upstream_request(state: "ProxyState") -> Callable[..., Any]:
    fn = getattr(state.upstream, "request", None)
    if fn is None:
        raise NotFoundError(f"the {state.upstream.name} upstream does not serve this endpoint "
                            "(Message Batches and Files need the Anthropic API or the offline upstream)")
    return fn


def back_headers(resp_headers: dict[str, str], rid: str) -> dict[str, str]:
    out = {k: v for k, v in resp_headers.items() if k in _FORWARD_BACK or k.startswith("anthropic-ratelimit-")}
    out["x-tierwise-request-id"] = rid
    out["x-tierwise-upstream"] = resp_headers.get("x-tierwise-upstream", "")
    return {k: v for k, v in out.items() if v}


def _own_results_url(request: Request, batch: Any) -> Any:
    """A batch object's ``results_url`` pointed at this proxy (SDKs fetch results from it)."""
    if isinstance(batch, dict) and batch.get("type") == "message_batch" and batch.get("results_url"):
        base = str(request.base_url).rstrip("/")
        batch["results_url"] = f"{base}/v1/messages/batches/{batch['id']}/results"
    return batch


def _rewrite(request: Request, body: bytes) -> bytes:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        for b in data["data"]:
            _own_results_url(request, b)
    else:
        _own_results_url(request, data)
    return orjson.dumps(data)


async def _route_params(state: "ProxyState", key: Any, i: int, req: Any, headers: dict[str, str],
                        now: float) -> "tuple[dict[str, Any] | None, bool]":
    """Route one batched request in place; its ``batch_requests`` row (None without a custom id)
    and whether its params changed."""
    task_header = headers.get("x-tierwise-task")
    params = req.get("params") if isinstance(req, dict) else None
    custom_id = req.get("custom_id") if isinstance(req, dict) else None
    if not isinstance(params, dict) or not isinstance(params.get("model"), str):
        return None, False  # the API answers for itself
    requested = params["model"]
    routed = requested == AUTO or requested.startswith(TASK_PREFIX)
    mapping = {"custom_id": custom_id, "created_at": now, "key_id": key.id if key is not None else None,
               "requested_model": requested[:128], "model": requested[:128], "tier": state.settings.catalog.tier_of(requested),
               "router": "passthrough", "reasons": "explicit model: passed through", "adapted": None, "task": None,
               "upstream": state.upstream.name[:32]}
    if not routed:
        if key is not None and key.restricted:
            try:
                check_model_allowed(key, state.settings.catalog, requested)
            except APIError as exc:
                exc.message = f"requests.{i}.params.model: {exc.message}"
                raise
        if task_header:
            mapping["task"] = task_header.strip().lower()[:64]
        return (mapping if isinstance(custom_id, str) else None), False
    try:
        validate_body(params)
        plan = await state.dispatcher.aplan(params, task_header, ab_key=headers.get("x-tierwise-session"),
                                            betas=headers.get("anthropic-beta"))
        if key is not None and key.restricted:
            plan = state.guard.clamp_to_pool(plan, params, key)
    except APIError as exc:
        exc.message = f"requests.{i}.params: {exc.message}"
        raise
    d = plan.decision
    mapping.update(model=plan.model_id[:128], tier=plan.tier, router=d.router[:32], reasons=d.reason_text()[:2000],
                   adapted=",".join(plan.adapted) or None, task=plan.task[:64] if plan.task else None)
    return (mapping if isinstance(custom_id, str) else None), True


def _store_mappings(engine: sa.Engine, batch_id: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    with engine.begin() as conn:
        conn.execute(batch_requests.insert(), [dict(r, batch_id=batch_id[:128], recorded_at=None) for r in rows])


def _result_row(state: "ProxyState", batch_id: str, m: Any, res: dict[str, Any], fallback_upstream: str) -> dict[str, Any]:
    result = res.get("result") if isinstance(res.get("result"), dict) else {}
    kind = result.get("type")
    msg = result.get("message") if kind == "succeeded" and isinstance(result.get("message"), dict) else None
    try:
        usage = Usage.from_api(msg.get("usage")) if msg is not None else Usage()
    except (TypeError, ValueError, AttributeError):
        usage = Usage()
    answered = (msg.get("model") if msg is not None and isinstance(msg.get("model"), str) else None) or (m["model"] if m else None)
    error_type = None
    status = 200
    if kind == "errored":
        err = result.get("error") if isinstance(result.get("error"), dict) else {}
        inner = err.get("error") if isinstance(err.get("error"), dict) else err
        error_type = str(inner.get("type") or "api_error")
        status = _STATUS.get(error_type, 500)
    elif kind != "succeeded":  # canceled, expired: never run, never billed
        error_type = f"batch_{kind}" if isinstance(kind, str) else "batch_unknown"
        status = 499 if kind == "canceled" else 408
    wall = float(m["created_at"]) if m else time.time()
    rec = CallRecord.new(f"{batch_id}:{res.get('custom_id')}"[:64], wall, requested=m["requested_model"] if m else None,
                         upstream=(m["upstream"] if m else None) or fallback_upstream, batch=True,
                         key_id=m["key_id"] if m else None)
    if m:  # where the batch request was routed when the batch was created
        rec.task, rec.router, rec.reasons, rec.adapted = m["task"], m["router"], m["reasons"], m["adapted"]
        rec.tier, rec.model = m["tier"], m["model"]
    rec.answer(state.dispatcher.book, answered if status == 200 else None, usage)  # at the batch discount
    if status != 200:  # never run, or failed: never billed
        rec.cost_nanos = rec.cost_nanos or 0
    return rec.finish(status, started=None, error_type=error_type,
                      stop_reason=msg.get("stop_reason") if msg is not None else None).row()


def _insert_new(conn: sa.Connection) -> Any:
    """INSERT that does nothing when the (batch, custom id) row exists (SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(batch_requests).on_conflict_do_nothing(index_elements=["batch_id", "custom_id"])


def record_results(state: "ProxyState", batch_id: str, results: Iterable[dict[str, Any]], upstream: str) -> int:
    """Write a ledger row for each result not yet recorded; returns how many were written."""
    engine = state.ledger.engine if state.ledger is not None else None
    if engine is None:
        return 0
    written = 0
    bid = batch_id[:128]
    columns = {c.name for c in calls.columns}
    with engine.begin() as conn:
        for res in results:
            cid = res.get("custom_id")
            if not isinstance(cid, str) or len(cid) > 64:
                continue
            now = time.time()
            where = sa.and_(batch_requests.c.batch_id == bid, batch_requests.c.custom_id == cid)
            m = conn.execute(sa.select(batch_requests).where(where)).mappings().first()
            if m is None:  # a batch created around the proxy: count it all the same, once
                ins = _insert_new(conn).values(batch_id=bid, custom_id=cid, created_at=now, upstream=upstream[:32],
                                               recorded_at=now).returning(batch_requests.c.custom_id)
                if conn.execute(ins).first() is None:
                    continue  # another fetch got there first
            elif conn.execute(batch_requests.update().where(where, batch_requests.c.recorded_at.is_(None))
                              .values(recorded_at=now)).rowcount != 1:
                continue  # already in the ledger
            row = _result_row(state, batch_id, m, res, upstream)
            conn.execute(calls.insert().values(**{k: v for k, v in row.items() if k in columns}))
            written += 1
    return written


async def _account(state: "ProxyState", batch_id: str, chunks: AsyncIterator[bytes], upstream: str) -> AsyncIterator[bytes]:
    """Pass the JSONL on chunk by chunk; every result line read is recorded (in the background thread)."""
    pending = b""
    parsed: list[dict[str, Any]] = []

    async def flush() -> None:
        nonlocal parsed
        if parsed:
            batch, parsed = parsed, []
            try:
                await asyncio.to_thread(record_results, state, batch_id, batch, upstream)
            except Exception:
                log.exception("could not record the results of batch %s", batch_id)

    try:
        async for chunk in chunks:
            yield chunk
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    try:
                        res = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(res, dict):
                        parsed.append(res)
            if len(parsed) >= _CHUNK_ROWS:
                await flush()
        if pending.strip():
            try:
                res = orjson.loads(pending)
                if isinstance(res, dict):
                    parsed.append(res)
            except orjson.JSONDecodeError:
                pass
    finally:
        await flush()


def batch_routes(state: "ProxyState", error_response: Callable[..., Response], new_id: Callable[[], str]) -> list[Any]:
    from starlette.routing import Route

    settings = state.settings

    async def create(request: Request) -> Response:
        rid = new_id()
        try:
            headers = {k.lower(): v for k, v in request.headers.items()}
            key = await state.guard.admit(headers)
            send = upstream_request(state)
            raw = await read_body(request.scope, request.receive, settings.max_body_bytes)
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
            reqs = data.get("requests") if isinstance(data, dict) else None
            mappings: list[dict[str, Any]] = []
            changed = False
            now = time.time()
            for i, req in enumerate(reqs if isinstance(reqs, list) else ()):
                mapping, routed = await _route_params(state, key, i, req, headers, now)
                changed = changed or routed
                if mapping is not None:
                    mappings.append(mapping)
            resp = await send("POST", _path(request), headers=headers, body=orjson.dumps(data) if changed else raw)
            batch = orjson.loads(resp.body or b"{}")
            if state.ledger is not None and isinstance(batch, dict) and isinstance(batch.get("id"), str):
                seen: set[str] = set()
                unique = [m for m in mappings if not (m["custom_id"] in seen or seen.add(m["custom_id"]))]
                try:
                    await asyncio.to_thread(_store_mappings, state.ledger.engine, batch["id"], unique)
                except Exception:
                    # accounted when fetched (without the key and task, which only the mapping knew)
                    log.exception("could not store the request mapping of batch %s", batch["id"])
        except APIError as exc:
            return error_response(exc, rid)
        return Response(orjson.dumps(_own_results_url(request, batch)), status_code=resp.status,
                        headers=back_headers(resp.headers, rid), media_type="application/json")

    async def forward(request: Request) -> Response:
        rid = new_id()
        try:
            headers = {k.lower(): v for k, v in request.headers.items()}
            await state.guard.admit(headers)
            send = upstream_request(state)
            body = await read_body(request.scope, request.receive, settings.max_body_bytes) if request.method == "POST" else None
            resp = await send(request.method, _path(request), headers=headers, body=body)
        except APIError as exc:
            return error_response(exc, rid)
        return Response(_rewrite(request, resp.body or b""), status_code=resp.status,
                        headers=back_headers(resp.headers, rid), media_type="application/json")

    async def results(request: Request) -> Response:
        rid = new_id()
        batch_id = request.path_params["batch_id"]
        try:
            headers = {k.lower(): v for k, v in request.headers.items()}
            await state.guard.admit(headers)
            send = upstream_request(state)
            resp = await send("GET", _path(request), headers=headers, stream=True)
        except APIError as exc:
            return error_response(exc, rid)
        hdrs = back_headers(resp.headers, rid)
        hdrs.setdefault("content-type", "application/binary")
        upstream_name = resp.headers.get("x-tierwise-upstream") or state.upstream.name

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in _account(state, batch_id, resp.chunks, upstream_name):
                    yield chunk
            finally:
                await resp.aclose()

        return StreamingResponse(body(), status_code=resp.status, headers=hdrs)

    return [
        Route("/v1/messages/batches", create, methods=["POST"]),
        Route("/v1/messages/batches", forward, methods=["GET"]),
        Route("/v1/messages/batches/{batch_id}", forward, methods=["GET", "DELETE"]),
        Route("/v1/messages/batches/{batch_id}/cancel", forward, methods=["POST"]),
        Route("/v1/messages/batches/{batch_id}/results", results, methods=["GET"]),
    ]


def _path(request: Request) -> str:
    """The path and query as the client sent them (``?beta=true``, list cursors...)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    return raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
