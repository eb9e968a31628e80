"""From a request to a target model, and from a finished call to a ledger row.

Shared by the proxy and the in-process ``tierwise.Client`` so both route and account alike.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import orjson

from .adapt import adapt_request
from .affinity import ThinkingAffinity
from .catalog import Model
from .config import TASK_NAME
from .cost import Usage, cost_nanos
from .errors import InvalidRequestError, NotFoundError
from .routing.base import Decision, RouteRequest, Router, build_router

if TYPE_CHECKING:
    from .config import Settings

__all__ = ["Dispatcher", "Plan", "validate_body"]

AUTO = "auto"
TASK_PREFIX = "tierwise/"


def validate_body(body: Any) -> dict[str, Any]:
    """The checks the API would make first, with Anthropic-style messages."""
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model: field required (a Claude model id, \"auto\", or \"tierwise/<task_type>\")")
    mt = body.get("max_tokens")
    if mt is None:
        raise InvalidRequestError("max_tokens: field required")
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
        raise InvalidRequestError("max_tokens: must be a positive integer")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequestError("messages: field required")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("messages: must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise InvalidRequestError(f"messages.{i}: each message needs role \"user\" or \"assistant\" and content")
        if "content" not in m:
            raise InvalidRequestError(f"messages.{i}.content: field required")
        if isinstance(m["content"], list):
            _check_texts(m["content"], f"messages.{i}.content", text_type_only=True)
    if isinstance(body.get("system"), list):
        _check_texts(body["system"], "system", text_type_only=False)
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequestError("stream: must be a boolean")
    return body


def _check_texts(blocks: list[Any], where: str, *, text_type_only: bool) -> None:
    """The ``text`` of a content block is a string (routing reads it; the API would refuse anything else)."""
    for j, b in enumerate(blocks):
        if isinstance(b, dict) and "text" in b and not isinstance(b["text"], str) and (
                not text_type_only or b.get("type") == "text"):
            raise InvalidRequestError(f"{where}.{j}.text: Input should be a valid string")


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

    @property
    def tier(self) -> str | None:
        return self.decision.tier


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
        self.affinity = ThinkingAffinity(capacity) if capacity else None
        self._tiers: dict[str, str | None] = {}  # model id -> tier, for ledger rows (the catalog never changes)
        self.unknown_model_passthrough = routing.get("unknown_model", "error") == "passthrough"
        from .ab import build_ab  # A/B test arms: None unless [ab] is enabled

        self.ab = build_ab(settings, self)

    # -- routing ------------------------------------------------------------------
    def plan(self, body: dict[str, Any], task_header: str | None = None, ab_key: str | None = None) -> Plan:
        """Decide where ``body`` goes and adapt it (in place) to the target model."""
        arm = self.ab.assign(body, ab_key) if self.ab is not None else None
        early = self._explicit(body, task_header, arm)
        if isinstance(early, Plan):
            return early
        request, router = early
        plan = self._finish(body, request, router.decide(request))
        plan.arm = arm.label if arm is not None else None
        return plan

    async def aplan(self, body: dict[str, Any], task_header: str | None = None, ab_key: str | None = None) -> Plan:
        """``plan`` for the proxy: awaits strategies that call a model to decide (``adecide``)."""
        arm = self.ab.assign(body, ab_key) if self.ab is not None else None
        early = self._explicit(body, task_header, arm)
        if isinstance(early, Plan):
            return early
        request, router = early
        adecide = getattr(router, "adecide", None)
        decision = await adecide(request) if adecide is not None else router.decide(request)
        plan = self._finish(body, request, decision)
        plan.arm = arm.label if arm is not None else None
        return plan

    def _explicit(self, body: dict[str, Any], task_header: str | None, arm: Any = None) -> "Plan | tuple[RouteRequest, Router]":
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

        request = RouteRequest(body, task)
        if self.affinity is not None:
            bound = self.affinity.model_for(body)
            if bound is not None and self.catalog.get(bound) is not None:
                return self._finish(body, request, Decision(
                    tier=self.catalog.tier_of(bound), confidence=1.0, router="affinity", model=bound, task=task,
                    reasons=(f"continues on {bound}: the thinking blocks of the conversation's last turn are bound "
                             "to the model that wrote them",)))
        routers = arm if arm is not None else self  # an A/B arm carries its own routers
        router = routers.per_task.get(task, routers.registry) if task is not None else routers.auto
        return request, router

    def _finish(self, body: dict[str, Any], request: RouteRequest, decision: Decision) -> Plan:
        requested = body["model"]
        target = self._target(decision, request)
        named = decision.model if decision.model and self.catalog.get(decision.model) is not None else None
        if target.id != (named or self.catalog.tiers.get(decision.tier or "", "")):
            decision = Decision(tier=self.catalog.tier_of(target.id), confidence=decision.confidence,
                                reasons=decision.reasons + (f"prompt needs a larger context window: {target.id}",),
                                router=decision.router, model=target.id, task=decision.task, scores=decision.scores,
                                cascade=decision.cascade)
        aff = self.affinity
        adapted = adapt_request(body, target, tier=decision.tier,
                                keep_thinking=None if aff is None else (lambda b: aff.wrote(b, target.id)))
        body["model"] = target.id
        return Plan(decision, target, target.id, requested, routed=True, adapted=adapted, task=request.task)

    def _target(self, decision: Decision, request: RouteRequest) -> Model:
        if decision.model:
            m = self.catalog.get(decision.model)
            if m is not None:
                return m
        tier = decision.tier or self.settings.default_tier
        model = self.catalog.model_for_tier(tier)
        # the prompt's estimated tokens, as Signals.tokens counts them, without extracting every signal
        # (strategies that do not read the signals, e.g. the registry, then never pay for them)
        need = (len(request.text) + 3) // 4 + int(request.body.get("max_tokens") or 0)
        if need > model.context_window:
            for t in self.catalog.tiers_above(tier):
                m = self.catalog.model_for_tier(t)
                if need <= m.context_window:
                    return m
        return model

    # -- accounting ---------------------------------------------------------------
    def row(self, *, plan: Plan | None, requested: str | None, request_id: str, started: float, wall: float,
            usage: Usage | None, answered_model: str | None, status: int, error_type: str | None = None,
            stream: bool = False, ttft: float | None = None, upstream: str = "", stop_reason: str | None = None,
            attempts: list[dict[str, Any]] | None = None, client_disconnected: bool = False,
            prompt: str | None = None, key_id: str | None = None, arm: str | None = None,
            escalations: int = 0, fallbacks: int = 0, prior_cost_nanos: int = 0,
            prior_usage: Usage | None = None) -> dict[str, Any]:
        """A ledger row; ``started`` is ``perf_counter()`` at arrival and ``wall`` the ``time.time()`` then.

        ``usage``/``answered_model`` are the answer's; earlier attempts of the same call (cascade
        escalations, fallbacks) add ``prior_usage`` to the token columns and ``prior_cost_nanos`` (each
        attempt priced on its own model) to the cost, so the row says what the call really cost. The
        default-tier comparison prices the answer's usage alone: one call on the default tier."""
        now = time.perf_counter()
        usage = usage or Usage()
        model_id = answered_model or (plan.model_id if plan else None)
        model = self.catalog.get(model_id) if model_id else None
        when, day = _utc_day(wall)
        cost = cost_nanos(model, usage, when=when) if model is not None else None
        default_cost = cost_nanos(self.default_model, usage, when=when)
        if prior_cost_nanos and cost is not None:
            cost += prior_cost_nanos
        if prior_usage is not None:
            usage = Usage(usage.input_tokens + prior_usage.input_tokens, usage.output_tokens + prior_usage.output_tokens,
                          usage.cache_write_5m_tokens + prior_usage.cache_write_5m_tokens,
                          usage.cache_write_1h_tokens + prior_usage.cache_write_1h_tokens,
                          usage.cache_read_tokens + prior_usage.cache_read_tokens)
        d = plan.decision if plan else None
        return {
            "ts": wall,
            "day": day,
            "request_id": request_id,
            "task": plan.task if plan else None,
            "router": d.router if d else None,
            "reasons": d.reason_text()[:2000] if d else None,
            "confidence": d.confidence if d else None,
            "tier": (self._tier_of(model_id) if model_id else None) or (d.tier if d else None),
            # caller- and upstream-supplied text is cut to its column's size: one over-long value
            # would otherwise fail the whole ledger batch on a database that enforces lengths
            "model": model_id[:128] if model_id else model_id,
            "requested_model": requested[:128] if requested else requested,
            "upstream": upstream[:32],
            "stream": stream,
            "batch": False,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_write_5m_tokens": usage.cache_write_5m_tokens,
            "cache_write_1h_tokens": usage.cache_write_1h_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cost_nanos": cost,
            "default_cost_nanos": default_cost,
            "latency_ms": (now - started) * 1000.0,
            "ttft_ms": (ttft - started) * 1000.0 if ttft is not None else None,
            "status": status,
            "error_type": error_type[:64] if error_type else error_type,
            "stop_reason": str(stop_reason)[:32] if stop_reason is not None else None,
            "escalations": escalations,
            "fallbacks": fallbacks,
            "attempts": orjson.dumps(attempts).decode() if attempts else None,
            "adapted": ",".join(plan.adapted) if plan and plan.adapted else None,
            "arm": arm if arm is not None else (plan.arm if plan else None),
            "key_id": key_id,
            "client_disconnected": client_disconnected,
            "prompt": prompt,
        }


    def _tier_of(self, model_id: str) -> str | None:
        try:
            return self._tiers[model_id]
        except KeyError:
            tier = self.catalog.tier_of(model_id)
            if len(self._tiers) < 4096:  # answered model ids come from upstreams: keep it bounded
                self._tiers[model_id] = tier
            return tier


_DAY: list[Any] = [None, None, ""]


def _utc_day(wall: float) -> tuple[_dt.date, str]:
    """The UTC date of ``wall`` and its ISO string, cached for the current day."""
    n = int(wall // 86400)
    if _DAY[0] != n:
        d = _dt.datetime.fromtimestamp(wall, _dt.timezone.utc).date()
        _DAY[:] = [n, d, d.isoformat()]
    return _DAY[1], _DAY[2]


def prompt_text(body: Mapping[str, Any]) -> str:
    return RouteRequest(dict(body)).text
