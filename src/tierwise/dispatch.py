"""From a request to a target model (its ledger row: ``tierwise.record``).

Shared by the proxy and the in-process ``tierwise.Client`` so both route and account alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from .adapt import adapt_request
from .admission.limits import routing_view
from .affinity import ThinkingAffinity
from .capabilities import Needs, lacks, missing_betas, needs_of, serving_tier
from .catalog import Model
from .config import TASK_NAME
from .errors import AdaptationError, InvalidRequestError, NotFoundError
from .record import Book
from .routing.base import Decision, Router, RouteRequest, build_router

if TYPE_CHECKING:
    from .config import Settings

__all__ = ["Dispatcher", "Plan", "validate_body"]

AUTO = "auto"
TASK_PREFIX = "tierwise/"


def validate_body(body: Any) -> dict[str, Any]:
    """Only what tierwise itself needs to route and account, in the API's wording.

    Everything else (roles, block types, unknown fields, mid-conversation ``system`` messages,
    images, documents, server tools...) passes through untouched: the API answers for itself."""
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object")
    model = body.get("model")
    if model is None:
        raise InvalidRequestError("model: Field required")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model: Input should be a valid string (a Claude model id, \"auto\", "
                                  "or \"tierwise/<task_type>\")")
    mt = body.get("max_tokens")
    if mt is None:
        raise InvalidRequestError("max_tokens: Field required")
    if not isinstance(mt, int) or isinstance(mt, bool):
        raise InvalidRequestError("max_tokens: Input should be a valid integer")
    if mt < 1:
        raise InvalidRequestError("max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequestError("messages: Field required")
    if not isinstance(messages, list):
        raise InvalidRequestError("messages: Input should be a valid list")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequestError("stream: Input should be a valid boolean")
    return body


@dataclass(slots=True)
class Plan:
    """What the proxy will send: the decision, the target model, the (adapted) body."""

    decision: Decision
    model: Model | None
    model_id: str
    requested: str
    routed: bool
    adapted: list[str] = field(default_factory=list)
    task: str | None = None
    arm: str | None = None          # A/B arm this request was assigned to, if an experiment runs
    needs: Needs | None = None      # what a routed request needs from a model (capability-aware routing)
    add_betas: tuple[str, ...] = ()  # betas tierwise adds to a routed request for what its body uses

    @property
    def tier(self) -> str | None:
        return self.decision.tier


class _Routed(RouteRequest):
    """A RouteRequest over the routing view, knowing the real prompt's size."""

    __slots__ = ("chars",)
    chars: int


class Dispatcher:
    def __init__(self, settings: "Settings", upstream: Any = None) -> None:
        self.settings = settings
        self.catalog = settings.catalog
        self.upstream = upstream
        routing = settings.routing
        opts = routing.get("options", {}) or {}

        def build(name: str) -> Router:
            return build_router(name, settings, upstream=upstream, **opts.get(name, {}))

        self.auto: Router = build(routing["auto"])
        self.registry: Router = build_router("registry", settings)
        self.per_task: dict[str, Router] = {}
        for task, strategy in (routing.get("strategies") or {}).items():
            if not isinstance(strategy, str):
                from .errors import ConfigError

                raise ConfigError(f"routing.strategies.{task}: expected a strategy name, got {strategy!r}")
            task_opts = (routing.get("task_options") or {}).get(task, {})
            self.per_task[task] = build_router(strategy, settings, upstream=upstream,
                                               **{**opts.get(strategy, {}), **task_opts})
        self.default_model = self.catalog.model_for_tier(settings.default_tier)
        capacity = int(routing.get("thinking_affinity", 0) or 0)
        redis_url = (settings.raw.get("resilience") or {}).get("redis_url") or ""
        self.affinity = ThinkingAffinity(capacity, redis_url=redis_url) if capacity else None
        self.book = Book(self.catalog, self.default_model.id)  # what pricing a ledger row needs (tierwise.record)
        self.unknown_model_passthrough = routing.get("unknown_model", "error") == "passthrough"
        # messages are scanned for block types / system roles only when a model routed to refuses some
        tier_models = [self.catalog.model_for_tier(t) for t in self.catalog.tiers]
        self._block_types = any(m.rejects_block_types for m in tier_models)
        self._system_roles = any(m.rejects_system_messages for m in tier_models)
        from .routing.arms import build_ab  # A/B test arms: None unless [ab] is enabled

        self.ab = build_ab(settings, self)

    # -- routing ------------------------------------------------------------------
    def plan(self, body: dict[str, Any], task_header: str | None = None, ab_key: str | None = None,
             betas: str | None = None) -> Plan:
        """Decide where ``body`` goes and adapt it (in place) to the target model; ``betas`` is the
        request's ``anthropic-beta`` header (a beta some model refuses is a capability need)."""
        arm = self.ab.assign(body, ab_key) if self.ab is not None else None
        early = self._explicit(body, task_header, arm, betas)
        if isinstance(early, Plan):
            return early
        request, router = early
        plan = self._finish(body, request, router.decide(request), betas)
        plan.arm = arm.label if arm is not None else None
        return plan

    async def aplan(self, body: dict[str, Any], task_header: str | None = None, ab_key: str | None = None,
                    betas: str | None = None) -> Plan:
        """``plan`` for the proxy: awaits strategies that call a model to decide (``adecide``)."""
        if self.affinity is not None:
            await self.affinity.aprefetch(body)  # thinking blocks another replica saw written (Redis)
        arm = self.ab.assign(body, ab_key) if self.ab is not None else None
        early = self._explicit(body, task_header, arm, betas)
        if isinstance(early, Plan):
            return early
        request, router = early
        adecide = getattr(router, "adecide", None)
        decision = await adecide(request) if adecide is not None else router.decide(request)
        plan = self._finish(body, request, decision, betas)
        plan.arm = arm.label if arm is not None else None
        return plan

    def _explicit(self, body: dict[str, Any], task_header: str | None, arm: Any = None,
                  betas: str | None = None) -> "Plan | tuple[RouteRequest, Router]":
        requested = body["model"]
        task: str | None = None
        if requested.startswith(TASK_PREFIX):
            task = requested[len(TASK_PREFIX):]
        elif task_header:
            task = task_header.strip().lower()
        if task is not None and not TASK_NAME.match(task):
            raise InvalidRequestError(f"task type {task!r} is not a valid name (lower-case letters, digits, '_', '-', '.')")

        if requested != AUTO and not requested.startswith(TASK_PREFIX):
            model = self.catalog.get(requested)
            if model is None and not self.unknown_model_passthrough:
                known = ", ".join(m.id for m in self.catalog.listed() if not m.retired)
                raise NotFoundError(f"model: {requested} (not in the tierwise catalog; use \"auto\", "
                                    f"\"tierwise/<task_type>\" or one of: {known})")
            tier = self.catalog.tier_of(requested)
            decision = Decision(tier=tier, reasons=("explicit model: passed through",), router="passthrough",
                                model=requested, task=task)
            return Plan(decision, model, requested, requested, routed=False, task=task)

        # strategies read a bounded view of the prompt (tierwise.admission.limits.routing_view): deciding on a
        # 32 MiB prompt costs what deciding on 256 KiB does; the real size still picks the context window
        view, chars = routing_view(body)
        request = _Routed(view, task)
        request.chars = chars
        if self.affinity is not None:
            bound = self.affinity.model_for(body)
            if bound is not None and self.catalog.get(bound) is not None:
                return self._finish(body, request, Decision(
                    tier=self.catalog.tier_of(bound), confidence=1.0, router="affinity", model=bound, task=task,
                    reasons=(f"continues on {bound}: the thinking blocks of the conversation's last turn are bound "
                             "to the model that wrote them",)), betas)
        routers = arm if arm is not None else self  # an A/B arm carries its own routers
        router = routers.per_task.get(task, routers.registry) if task is not None else routers.auto
        return request, router

    def _finish(self, body: dict[str, Any], request: RouteRequest, decision: Decision,
                betas: str | None = None) -> Plan:
        requested = body["model"]
        target = self._target(decision)
        needs = needs_of(body, request.chars if isinstance(request, _Routed) else len(request.text), betas,
                         block_types=self._block_types, system_roles=self._system_roles)
        why = lacks(target, needs)
        if why is not None:
            chosen = self.choose(target, needs, why)
            if chosen.id != target.id:
                decision = Decision(tier=self.catalog.tier_of(chosen.id), confidence=decision.confidence,
                                    reasons=decision.reasons + (f"{why} -> {chosen.id} ({self.catalog.tier_of(chosen.id)}),"
                                                                " the cheapest tier that serves it",),
                                    router=decision.router, model=chosen.id, task=decision.task, scores=decision.scores,
                                    cascade=decision.cascade)
                target = chosen
        cascade = decision.cascade
        if cascade is not None:  # a cascade escalates only through tiers that can serve the request
            ladder = tuple(t for t in cascade.ladder if t in self.catalog.tiers
                           and lacks(self.catalog.model_for_tier(t), needs, limits=False) is None)
            if ladder != tuple(cascade.ladder):
                import dataclasses

                kept = dataclasses.replace(cascade, ladder=ladder) if len(ladder) >= 2 else None
                decision = dataclasses.replace(decision, cascade=kept)
        aff = self.affinity
        adapted = adapt_request(body, target, tier=decision.tier,
                                keep_thinking=None if aff is None else (lambda b: aff.wrote(b, target.id)))
        body["model"] = target.id
        add = missing_betas(body, betas)
        if add:
            adapted = [*adapted, *(f"beta+{b}" for b in add)]
        return Plan(decision, target, target.id, requested, routed=True, adapted=adapted, task=request.task, needs=needs,
                    add_betas=add)

    def choose(self, target: Model, needs: Needs, why: str, allowed: Any = None, pool: str = "") -> Model:
        """The model to send a request to whose chosen ``target`` lacks something (``why``): the cheapest
        configured tier (among ``allowed`` ones) that serves it; the target itself when only its output
        limit is short and no tier has more (``max_tokens`` is lowered); else a 400 in the API's terms."""
        cat = self.catalog
        tier = serving_tier(cat, needs, allowed=allowed)
        if tier is not None:
            return cat.model_for_tier(tier)
        if lacks(target, needs, limits=False) is None and (allowed is None or allowed(cat.tier_of(target.id))):
            return target
        tier = serving_tier(cat, needs, allowed=allowed, limits=False)
        if tier is not None:
            return cat.model_for_tier(tier)
        raise unservable(cat, needs, why, pool)

    def _target(self, decision: Decision) -> Model:
        if decision.model:
            m = self.catalog.get(decision.model)
            if m is not None:
                return m
        return self.catalog.model_for_tier(decision.tier or self.settings.default_tier)


def unservable(catalog: Any, needs: Needs, why: str, pool: str = "") -> InvalidRequestError:
    """The 400 for a routed request no tier (of ``pool``, when a key restricts it) can serve."""
    where = pool or f"the configured tiers ({', '.join(catalog.tier_order)})"
    if needs.system_messages and why.startswith("mid-conversation system"):
        # the API's own wording: clients (Claude Code) retry without system messages on it
        return InvalidRequestError('messages: Unexpected role "system". The Messages API accepts a top-level `system` '
                                   f'parameter, not "system" as an input message role ({why}, and so do {where})')
    return AdaptationError(f"{why}, and none of {where} serves the request; send it to a model by id or change it")


def prompt_text(body: Mapping[str, Any]) -> str:
    return RouteRequest(dict(body)).text
