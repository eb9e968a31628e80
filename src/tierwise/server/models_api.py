"""``GET /v1/models`` and ``GET /v1/models/{model_id}``: the catalog, ``auto`` and ``tierwise/<task>``,
each as the same object (``models.list`` and ``models.retrieve`` in the SDKs). Both need a valid
proxy key when keys are enforced: a caller without one sees nothing; the ``tierwise/<task>`` entries
are listed only for an operator key (tierwise.server.access)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..config import TASK_NAME
from ..dispatch import AUTO, TASK_PREFIX
from ..errors import APIError, NotFoundError

if TYPE_CHECKING:
    from .state import ProxyState

__all__ = ["model_routes"]

CREATED = "2026-11-21T00:00:00Z"


def _auto() -> dict[str, Any]:
    return {"type": "model", "id": AUTO, "display_name": "tierwise auto (router picks the tier)", "created_at": CREATED}


def _task(task: str, tier: str) -> dict[str, Any]:
    return {"type": "model", "id": f"{TASK_PREFIX}{task}", "display_name": f"tierwise task {task} -> {tier}",
            "created_at": CREATED}


def _model(state: "ProxyState", m: Any) -> dict[str, Any]:
    catalog = state.settings.catalog
    tier = catalog.tier_of(m.id)
    price = m.price_at()
    return {"type": "model", "id": m.id, "display_name": m.id + (f" ({tier})" if tier else ""), "created_at": CREATED,
            "tier": tier, "context_window": m.context_window, "max_output": m.max_output,
            "price_per_mtok": {"input": float(price.rates.input), "output": float(price.rates.output)}}


def model_objects(state: "ProxyState", tasks: bool = True) -> list[dict[str, Any]]:
    data = [_auto()]
    if tasks:
        data += [_task(task, tier) for task, tier in sorted(state.settings.registry.items())]
    data += [_model(state, m) for m in state.settings.catalog.listed() if not m.retired]
    return data


def model_object(state: "ProxyState", model_id: str) -> dict[str, Any] | None:
    """The object ``models.list`` shows for ``model_id`` (an id, alias or dated id; ``auto``;
    ``tierwise/<task>``), or None."""
    settings = state.settings
    if model_id == AUTO:
        return _auto()
    if model_id.startswith(TASK_PREFIX):
        task = model_id[len(TASK_PREFIX):]
        if task in settings.registry:
            return _task(task, settings.registry[task])
        dispatcher = state.dispatcher
        if task in dispatcher.per_task:
            return _task(task, f"strategy {settings.routing['strategies'][task]}")
        if TASK_NAME.match(task) and getattr(dispatcher.registry, "unknown_to_default", False):
            return _task(task, f"{settings.default_tier} (not in the registry: the default tier)")
        return None
    m = settings.catalog.get(model_id)
    if m is None or m.retired:
        return None
    return _model(state, m)


def model_routes(state: "ProxyState", error_response: Callable[[APIError], Response]) -> list[Any]:
    from starlette.routing import Route

    async def admitted(request: Request) -> Any:
        return await state.guard.admit({k.lower(): v for k, v in request.headers.items()})

    async def models(request: Request) -> Response:
        try:
            key = await admitted(request)
        except APIError as exc:
            return error_response(exc)
        # the task list is the operator's business: with keys enforced only an operator key lists it
        data = model_objects(state, tasks=key is None or key.operator)
        return Response(orjson.dumps({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}),
                        media_type="application/json")

    async def model(request: Request) -> Response:
        try:
            await admitted(request)
            model_id = request.path_params["model_id"]
            obj = model_object(state, model_id)
            if obj is None:
                raise NotFoundError(f"model: {model_id}")
        except APIError as exc:
            return error_response(exc)
        return Response(orjson.dumps(obj), media_type="application/json")

    return [Route("/v1/models", models, methods=["GET"]), Route("/v1/models/{model_id:path}", model, methods=["GET"])]
