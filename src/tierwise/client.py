"""In-process routing for teams that want no proxy: the seeds' ``call_ai(task_type, prompt)``.

``tierwise.Client`` wraps the official SDK's client. ``client.messages.create(task=..., ...)`` or
``model="auto"`` routes with the same router as the proxy, writes the same ledger row, and returns
the SDK's own ``Message``. ``AsyncClient`` does the same over ``AsyncAnthropic``.

``Client(offline=True)`` answers from the built-in offline upstream (no key, no network), through
the SDK's own transport layer, so code written against it runs unchanged against the real API.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import time
from typing import Any, AsyncIterator, Iterator, Mapping

import orjson

from .affinity import message_thinking_keys
from .config import Settings, load_settings
from .cost import Usage
from .dispatch import Dispatcher, Plan, validate_body
from .ledger import Ledger
from .record import CallRecord
from .routing.base import Decision, RouteRequest

__all__ = ["Client", "AsyncClient"]


def _offline_transport(async_: bool, settings: Settings) -> Any:
    import httpx2

    from .cachesim import CacheSim  # the per-model prompt caches the offline upstream simulates
    from .upstream.offline import stream_events, synthesize
    from .upstream.sse import format_event

    seen: set[str] = set()
    cache = CacheSim()

    def handle(request: Any) -> Any:
        params = orjson.loads(request.content or b"{}")
        if request.url.path.endswith("/count_tokens"):
            from .upstream.offline import _text_of

            text, _ = _text_of(params)
            return httpx2.Response(200, json={"input_tokens": (len(text) + 3) // 4 + 3})
        msg = synthesize(params, seen)
        msg["usage"] = cache.apply(params, msg["usage"], time.perf_counter())
        headers = {"request-id": "req_offline_" + msg["id"][-20:], "x-tierwise-upstream": "offline"}
        if params.get("stream"):
            body = b"".join(format_event(name, data) for name, data, _ in stream_events(msg))
            return httpx2.Response(200, content=body, headers={**headers, "content-type": "text/event-stream"})
        return httpx2.Response(200, content=orjson.dumps(msg), headers={**headers, "content-type": "application/json"})

    if async_:
        async def ahandle(request: Any) -> Any:
            return handle(request)

        return httpx2.AsyncClient(transport=httpx2.MockTransport(ahandle))
    return httpx2.Client(transport=httpx2.MockTransport(handle))


class _Core:
    """What sync and async clients share: settings, dispatcher, ledger, and the SDK call split."""

    def __init__(self, settings: Settings | None, config: str | None, ledger: Ledger | bool | None) -> None:
        self.settings = settings or load_settings(config)
        self.dispatcher = Dispatcher(self.settings)
        if ledger is True:
            ledger = Ledger.from_settings(self.settings)
            atexit.register(ledger.close)
        self.ledger: Ledger | None = ledger or None
        self._known: frozenset[str] | None = None

    def prepare(self, task: str | None, params: dict[str, Any]) -> tuple[dict[str, Any], Plan, float, float, str | None]:
        body = dict(params)
        if task is not None:
            body["model"] = f"tierwise/{task}"
        body.setdefault("model", "auto")
        validate_body(body)
        prompt = RouteRequest(body).text if self.ledger is not None and self.ledger.store_prompts else None
        requested = body["model"]
        plan = self.dispatcher.plan(body)
        return body, plan, time.perf_counter(), time.time(), prompt if requested else None

    def split(self, method: Any, body: dict[str, Any]) -> dict[str, Any]:
        """SDK keyword arguments; fields this SDK version has no parameter for go in ``extra_body``."""
        if self._known is None:
            self._known = frozenset(inspect.signature(method).parameters)
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in body.items():
            (kwargs if k in self._known else extra)[k] = v
        if extra:
            kwargs["extra_body"] = {**extra, **kwargs.get("extra_body", {})}
        return kwargs

    def record(self, plan: Plan, requested: str, started: float, wall: float, *, usage: Usage | None = None,
               model: str | None = None, status: int = 200, error_type: str | None = None, stream: bool = False,
               stop_reason: str | None = None, prompt: str | None = None, ttft: float | None = None,
               message: Any = None) -> None:
        if message is not None and model and self.dispatcher.affinity is not None:
            self.dispatcher.affinity.remember(message_thinking_keys(message), model)
        if self.ledger is None:
            return
        rid = "req_tw_lib_" + str(int(wall * 1e6))
        rec = CallRecord.new(rid, wall, requested=requested, upstream="sdk", stream=stream, prompt=prompt).route(plan)
        rec.answer(self.dispatcher.book, model, usage)
        self.ledger.record(rec.finish(status, started=started, error_type=error_type, stop_reason=stop_reason,
                                      ttft=ttft).row())

    def record_error(self, plan: Plan, requested: str, started: float, wall: float, exc: Exception, stream: bool) -> None:
        status = getattr(exc, "status_code", None) or 502
        kind = "api_error"
        body = getattr(exc, "body", None)
        if isinstance(body, Mapping):
            kind = (body.get("error") or {}).get("type", kind)
        self.record(plan, requested, started, wall, status=int(status), error_type=kind, stream=stream)


def _usage_of(message: Any) -> Usage:
    u = getattr(message, "usage", None)
    return Usage.from_api(u.model_dump() if u is not None else None)


def _model_of(message: Any, plan: Plan) -> str:
    for block in getattr(message, "content", None) or ():
        if getattr(block, "type", None) == "fallback":
            to = getattr(block, "to", None)
            model = getattr(to, "model", None) if to is not None else None
            if model:
                return model
    return getattr(message, "model", None) or plan.model_id


class _Messages:
    def __init__(self, owner: "Client") -> None:
        self._o = owner

    def create(self, *, task: str | None = None, **params: Any) -> Any:
        """Like ``anthropic.Anthropic().messages.create``, plus ``task=`` and ``model="auto"``."""
        core, sdk = self._o._core, self._o.anthropic
        requested = params.get("model") or (f"tierwise/{task}" if task else "auto")
        body, plan, started, wall, prompt = core.prepare(task, params)
        try:
            message = sdk.messages.create(**core.split(sdk.messages.create, body))
        except Exception as exc:
            core.record_error(plan, requested, started, wall, exc, bool(body.get("stream")))
            raise
        if body.get("stream"):
            raise TypeError("use client.messages.stream(...) for streaming through tierwise.Client")
        core.record(plan, requested, started, wall, usage=_usage_of(message), model=_model_of(message, plan),
                    stop_reason=getattr(message, "stop_reason", None), prompt=prompt, message=message)
        return message

    @contextlib.contextmanager
    def stream(self, *, task: str | None = None, **params: Any) -> Iterator[Any]:
        """Like the SDK's ``messages.stream``; the ledger row is written when the block exits."""
        core, sdk = self._o._core, self._o.anthropic
        requested = params.get("model") or (f"tierwise/{task}" if task else "auto")
        body, plan, started, wall, prompt = core.prepare(task, params)
        body.pop("stream", None)
        try:
            with sdk.messages.stream(**core.split(sdk.messages.stream, body)) as s:
                yield s
                final = s.get_final_message()
        except Exception as exc:
            core.record_error(plan, requested, started, wall, exc, True)
            raise
        core.record(plan, requested, started, wall, usage=_usage_of(final), model=_model_of(final, plan), stream=True,
                    stop_reason=final.stop_reason, prompt=prompt, message=final)


class Client:
    """Routing in-process over the official SDK. Extra keyword arguments go to ``anthropic.Anthropic``."""

    def __init__(self, *, settings: Settings | None = None, config: str | None = None, anthropic_client: Any = None,
                 ledger: Ledger | bool | None = True, offline: bool = False, **anthropic_kwargs: Any) -> None:
        self._core = _Core(settings, config, ledger)
        if anthropic_client is None:
            import anthropic

            if offline:
                anthropic_kwargs.setdefault("api_key", "offline")
                anthropic_kwargs.setdefault("http_client", _offline_transport(False, self._core.settings))
            anthropic_client = anthropic.Anthropic(**anthropic_kwargs)
        self.anthropic = anthropic_client
        self.messages = _Messages(self)

    @property
    def settings(self) -> Settings:
        return self._core.settings

    @property
    def ledger(self) -> Ledger | None:
        return self._core.ledger

    def route(self, prompt: str, task: str | None = None) -> Decision:
        """The decision for a prompt, without calling anything."""
        body = {"model": f"tierwise/{task}" if task else "auto", "max_tokens": 1024,
                "messages": [{"role": "user", "content": prompt}]}
        return self._core.dispatcher.plan(body).decision

    def close(self) -> None:
        if self._core.ledger is not None:
            self._core.ledger.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _AsyncMessages:
    def __init__(self, owner: "AsyncClient") -> None:
        self._o = owner

    async def create(self, *, task: str | None = None, **params: Any) -> Any:
        core, sdk = self._o._core, self._o.anthropic
        requested = params.get("model") or (f"tierwise/{task}" if task else "auto")
        body, plan, started, wall, prompt = core.prepare(task, params)
        if body.get("stream"):
            raise TypeError("use client.messages.stream(...) for streaming through tierwise.AsyncClient")
        try:
            message = await sdk.messages.create(**core.split(sdk.messages.create, body))
        except Exception as exc:
            core.record_error(plan, requested, started, wall, exc, False)
            raise
        core.record(plan, requested, started, wall, usage=_usage_of(message), model=_model_of(message, plan),
                    stop_reason=getattr(message, "stop_reason", None), prompt=prompt, message=message)
        return message

    @contextlib.asynccontextmanager
    async def stream(self, *, task: str | None = None, **params: Any) -> AsyncIterator[Any]:
        core, sdk = self._o._core, self._o.anthropic
        requested = params.get("model") or (f"tierwise/{task}" if task else "auto")
        body, plan, started, wall, prompt = core.prepare(task, params)
        body.pop("stream", None)
        try:
            async with sdk.messages.stream(**core.split(sdk.messages.stream, body)) as s:
                yield s
                final = await s.get_final_message()
        except Exception as exc:
            core.record_error(plan, requested, started, wall, exc, True)
            raise
        core.record(plan, requested, started, wall, usage=_usage_of(final), model=_model_of(final, plan), stream=True,
                    stop_reason=final.stop_reason, prompt=prompt, message=final)


class AsyncClient:
    """``Client`` over ``anthropic.AsyncAnthropic``."""

    def __init__(self, *, settings: Settings | None = None, config: str | None = None, anthropic_client: Any = None,
                 ledger: Ledger | bool | None = True, offline: bool = False, **anthropic_kwargs: Any) -> None:
        self._core = _Core(settings, config, ledger)
        if anthropic_client is None:
            import anthropic

            if offline:
                anthropic_kwargs.setdefault("api_key", "offline")
                anthropic_kwargs.setdefault("http_client", _offline_transport(True, self._core.settings))
            anthropic_client = anthropic.AsyncAnthropic(**anthropic_kwargs)
        self.anthropic = anthropic_client
        self.messages = _AsyncMessages(self)

    @property
    def ledger(self) -> Ledger | None:
        return self._core.ledger

    def route(self, prompt: str, task: str | None = None) -> Decision:
        body = {"model": f"tierwise/{task}" if task else "auto", "max_tokens": 1024,
                "messages": [{"role": "user", "content": prompt}]}
        return self._core.dispatcher.plan(body).decision

    async def aclose(self) -> None:
        if self._core.ledger is not None:
            self._core.ledger.close()
        await self.anthropic.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


