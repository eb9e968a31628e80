"""The proxy's evidence routes: ``POST /v1/feedback``, ``GET /metrics``, ``GET /dashboard``; and the
background watcher that reloads the registry from tierwise.toml and runs the monitor.

Who may call them is decided in :mod:`tierwise.server.access`: when proxy keys are enforced,
``/metrics`` and ``/dashboard`` need an operator key (``x-api-key``, ``Authorization: Bearer``, or for
a browser ``/dashboard?key=...`` which sets an HttpOnly cookie) or ``$TIERWISE_DASHBOARD_TOKEN``
(``dashboard.token_env``); ``/v1/feedback`` takes a caller key for the caller's own request ids.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import APIError, InvalidRequestError, NotFoundError, error_body
from .access import FEEDBACK, OPERATOR, Access, Caller
from .messages import ClientGone, new_request_id, read_body

if TYPE_CHECKING:
    from ..monitor import Monitor
    from ..registry_history import RegistryHistory
    from .state import ProxyState

__all__ = ["EvidenceState", "evidence_routes"]

log = logging.getLogger("tierwise.evidence")
_COOKIE = "tierwise_key"
FEEDBACK_MAX_BYTES = 64 * 1024


class EvidenceState:
    """Metrics, registry history, monitor and the watcher thread of one proxy."""

    def __init__(self, state: "ProxyState") -> None:
        self.state = state
        self.settings = state.settings
        self.metrics = state.metrics
        self.engine = state.ledger.engine if state.ledger is not None else None
        self.access = Access(state)
        self.history: RegistryHistory | None = None
        self.monitor: Monitor | None = None
        self._stop = threading.Event()
        self._mtime: float | None = None
        if self.engine is not None:
            from ..monitor import Monitor
            from ..registry_history import RegistryHistory

            self.history = RegistryHistory(self.settings, self.engine, live=True)
            self.monitor = Monitor(self.settings, self.engine, history=self.history, metrics=self.metrics,
                                   on_change=self._after_revert)
            self._mtime = self._file_mtime()
            interval = float(self.settings.raw["monitor"]["interval"])
            if interval > 0:
                t = threading.Thread(target=self._run, args=(interval,), name="tierwise-monitor", daemon=True)
                t.start()

    # -- registry reload + monitor ----------------------------------------------------
    def _file_mtime(self) -> float | None:
        try:
            return self.history.path.stat().st_mtime if self.history is not None else None
        except OSError:
            return None

    def reload_registry(self) -> bool:
        """Re-read [registry] (and [ab]) from tierwise.toml when it changed; updates routing in place."""
        from ..config import load_settings
        from ..routing.arms import build_ab

        if self.history is None:
            return False
        mtime = self._file_mtime()
        if mtime is None or mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            fresh = load_settings(self.history.path)
        except Exception as exc:  # noqa: BLE001 - a broken file must not stop the proxy
            log.error("not reloading the registry: %s", exc)
            return False
        self.settings.replace_registry(fresh.registry)  # a new snapshot; routers read it per request
        live = self.settings.registry
        dispatcher = self.state.dispatcher
        if fresh.raw.get("ab") != self.settings.raw.get("ab"):
            self.settings.raw["ab"] = fresh.raw.get("ab")
            try:
                dispatcher.ab = build_ab(self.settings, dispatcher)
            except Exception as exc:  # noqa: BLE001
                log.error("not reloading [ab]: %s", exc)
        elif getattr(dispatcher, "ab", None) is not None:
            dispatcher.ab.refresh_registry(live)
        log.info("registry reloaded from %s", self.history.path)
        return True

    def _after_revert(self) -> None:
        self._mtime = self._file_mtime()
        ab = getattr(self.state.dispatcher, "ab", None)
        if ab is not None:
            ab.refresh_registry(self.settings.registry)

    def tick(self) -> list[dict[str, Any]]:
        self.reload_registry()
        if self.monitor is not None and self.settings.raw["monitor"]["enabled"]:
            return self.monitor.check()
        return []

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            led = self.state.ledger
            if led is None or getattr(led.writer, "_closed", False):
                return
            try:
                self.tick()
            except Exception:
                log.exception("monitor tick failed")

    def stop(self) -> None:
        self._stop.set()

    # -- auth -------------------------------------------------------------------------
    async def authorize(self, request: Request, need: str = OPERATOR, what: str = "this page") -> Caller:
        """The caller, or AuthenticationError / PermissionDeniedError (see tierwise.server.access)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        return await self.access.check(headers, need, cookie=request.cookies.get(_COOKIE, ""), what=what)

    async def owner(self, request_id: str) -> tuple[bool, str | None]:
        """(known, key id) of the request ``request_id``: this process's recent calls first, then the ledger."""
        owners = self.state.owners
        if request_id in owners:
            return True, owners[request_id]
        if self.engine is None:
            return False, None
        import sqlalchemy as sa

        from ..ledger.schema import calls

        def look() -> tuple[bool, str | None]:
            with self.engine.connect() as conn:  # type: ignore[union-attr]
                row = conn.execute(sa.select(calls.c.key_id).where(calls.c.request_id == request_id).limit(1)).first()
            return (row is not None, row[0] if row is not None else None)

        return await run_in_threadpool(look)


def _error(exc: APIError) -> Response:
    rid = new_request_id()  # Anthropic's error JSON always carries a request_id
    return Response(error_body(exc.error_type, exc.message, rid), status_code=exc.status, media_type="application/json",
                    headers={"x-tierwise-request-id": rid})


def evidence_routes(ev: EvidenceState) -> list[Route]:
    from ..feedback import parse_feedback, record_feedback

    async def post_feedback(request: Request) -> Response:
        try:
            who = await ev.authorize(request, FEEDBACK, "feedback")
            if ev.engine is None:
                raise APIError("feedback needs the ledger, and this proxy runs without one", status=503)
            # the size is checked before the body is read (content-length), and while it is read
            raw = await read_body(request.scope, request.receive, FEEDBACK_MAX_BYTES)
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
            fb = parse_feedback(data)
            if who.enforced and not who.operator:
                # a caller key reports only on its own answers; an unknown id and another key's id read the same
                known, owner = await ev.owner(fb.request_id)
                if not known or who.key is None or owner != who.key.id:
                    raise NotFoundError(f"request_id: no request {fb.request_id[:64]!r} was made with this proxy key")
            bad_score = float(ev.settings.raw["monitor"]["bad_score"])
            row = await run_in_threadpool(record_feedback, ev.engine, fb, bad_score=bad_score)
        except APIError as exc:
            return _error(exc)
        except ClientGone:
            return Response(b"", status_code=400)
        ev.metrics.feedback_received(row["error"])
        return Response(orjson.dumps({"type": "feedback", "id": row["id"], "request_id": row["request_id"],
                                      "error": row["error"]}), media_type="application/json")

    async def metrics(request: Request) -> Response:
        try:
            await ev.authorize(request, OPERATOR, "/metrics")
        except APIError as exc:
            return _error(exc)
        body, ctype = ev.metrics.exposition()
        return Response(body, media_type=ctype.split(";")[0], headers={"content-type": ctype})

    async def dashboard(request: Request) -> Response:
        from .dashboard import collect, render

        key = request.query_params.get("key")
        if key:  # a browser cannot set headers: move the key into an HttpOnly cookie, out of the URL
            resp = RedirectResponse(url=request.url.path, status_code=303)
            resp.set_cookie(_COOKIE, key, httponly=True, samesite="strict")
            return resp
        try:
            await ev.authorize(request, OPERATOR, "the dashboard")
        except APIError as exc:
            if request.url.path.endswith(".json"):
                return _error(exc)
            return Response(f"<!doctype html><title>tierwise</title><p>{exc.message}</p>".encode(), status_code=exc.status,
                            media_type="text/html")
        if not ev.settings.raw["dashboard"]["enabled"]:
            return _error(APIError("the dashboard is turned off (dashboard.enabled)", status=404))
        try:
            days = int(request.query_params.get("days", "30"))
            if not 1 <= days <= 3660:
                raise ValueError
        except ValueError:
            return _error(InvalidRequestError("days: a whole number from 1 to 3660"))
        if ev.engine is None:
            return Response(b"<!doctype html><p>The dashboard needs the ledger; this proxy runs without one.</p>",
                            status_code=503, media_type="text/html")
        data = await run_in_threadpool(collect, ev.settings, ev.engine, days)
        if request.url.path.endswith(".json"):
            return Response(orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS), media_type="application/json")
        return Response(render(data).encode(), media_type="text/html; charset=utf-8")

    return [
        Route("/v1/feedback", post_feedback, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/dashboard", dashboard, methods=["GET"]),
        Route("/dashboard/data.json", dashboard, methods=["GET"]),
    ]
