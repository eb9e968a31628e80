"""The ``prior`` strategy (``auto``'s default): start from the kind of work, then difficulty, then the conversation.

1. **View.** A bounded view of the request (:mod:`.view`): the task at hand is the latest user
   text (with a short system prompt of an ordinary app); an agent harness's system prompt and tools
   are measured, never read. Harness side requests (titles, one-line summaries, quick
   classifications) go to the fast tier.
2. **Category prior.** :func:`.taxonomy.categorize` recognises the task category with a confidence;
   its tier is the team's ``[registry]`` entry when the category is a registry task type (so
   ``tierwise eval apply`` outcomes override the seeds), else option ``tiers``, else the seeds'
   default (:data:`.taxonomy.TIERS`). Nothing recognised: the safe default tier; a short question
   with nothing to reason about: the fast tier.
3. **Within bounds.** Stakes on a low-confidence fast category lift it to the default tier; a very
   long document prompt lifts a document task to deep; the learned router, when it offers
   ``escalation(request) -> int`` (rungs up from the cheapest, from a low predicted cheap-tier
   score), can only move the tier *up*: a low predicted score means harder, never cheaper.
4. **Conversation.** A conversation (recognised across turns, :mod:`tierwise.conversation`) stays
   on its model unless the move pays: a move up for capability is made at a user turn (never in the
   middle of a tool loop) with its cost in the reason; a move down only when
   :func:`tierwise.cachesim.switch_reckoning` shows it cheaper over ``horizon_turns`` turns, cache
   re-write included. The reckoning is in the reason either way. A compaction request (the harness
   asks for a summary of the conversation so far, after which the conversation goes on from the
   summary) is the last on its prefix: a move is priced over that request alone.

Options (``[routing.options.prior]``): ``tiers`` (category -> tier), ``min_confidence``,
``sticky``, ``horizon_turns`` (turns a move is priced over: a typical agent task's remaining tool
loops), ``output_tokens`` (expected per turn), ``max_tier`` (never above this tier), ``switch_margin`` (the share of the cost of staying a move
down must save over the horizon; default 0), ``conversations`` (capacity), ``conversation_ttl``
(seconds), ``learned`` (ask the learned router for escalation; default true), ``learned_below``
(only when the category's confidence is below this: the shipped learned router was trained on
MMLU/GSM8K outcomes, and on the realistic set's dev split it lifts confident classification and
extraction prompts to Sonnet; where the category is uncertain its difficulty score decides upward),
``deep_confidence`` (inside a conversation, a move up to the deep tier re-writes the whole prompt
cache at the deep tier's prices: it is made only for a deep task recognised with at least this
confidence, else the move goes at most to the default tier; chosen on the realistic set's dev split,
where every agent row labelled deep scores 0.74 or more and every row wrongly sent deep 0.59 or less).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

from ..conversation import conversation_key
from ..errors import ConfigError
from .base import Decision, RouteRequest
from .taxonomy import LABELS, TIERS, categorize, short_output
from .view import View, view_of

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["PriorRouter", "OPTIONS"]

OPTIONS: dict[str, Any] = {
    "tiers": {},
    "min_confidence": 0.0,
    "sticky": True,
    "horizon_turns": 3,
    "max_tier": "",
    "switch_margin": 0.0,
    "output_tokens": 600,
    "conversations": 50_000,
    "conversation_ttl": 3600.0,
    "learned": True,
    "learned_below": 0.5,
    "deep_confidence": 0.6,
}

_STAKES = tuple(sorted({"security", "vulnerability", "exploit", "payment", "payments", "legal", "contract", "liability",
                     "compliance", "medical", "diagnosis", "irreversible", "lawsuit", "regulatory", "gdpr", "hipaa",
                     "production"}))
_SIDE_WHY = {"title": "a conversation title", "summary": "a one-line summary", "classification": "a quick classification",
             "quota": "a quota probe"}
_LONG_DOC_TOKENS = 100_000
_QUESTION = re.compile(r"(?:what|which|is|are|does|do|how many|how much|where|who|when|can you tell|hi\b|hey\b|hello\b|"
                       r"thanks\b|thank you\b|ok\b|run \S+ and tell)")
_QUICK_MAX_SCORE = 4.0
# a harness compacting the conversation (Claude Code's /compact and auto-compact: the whole conversation, then
# a request for a summary of it): the last request on this prefix, since the conversation goes on from the summary
_COMPACTION = re.compile(r"summary of the conversation so far|summari[sz]e (?:the|this|our) conversation "
                         r"(?:so far|above)|compact(?:ing)? (?:the|this) conversation")
_MAX_HORIZON = 20
_DOC_TASKS = frozenset({"synthesize_documents", "summarize_short", "review_code", "explain_concept"})


class PriorRouter:
    name = "prior"

    def __init__(self, settings: "Settings", upstream: Any = None, **options: Any) -> None:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"routing.options.prior: unknown option(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(OPTIONS))})")
        o = {**OPTIONS, **options}
        catalog = settings.catalog
        self.catalog = catalog
        tiers = catalog.tier_order
        self.fast = "fast" if "fast" in tiers else tiers[0]
        self.deep = "deep" if "deep" in tiers else tiers[-1]
        self.default = settings.default_tier
        table = o["tiers"]
        if not isinstance(table, Mapping):
            raise ConfigError("routing.options.prior.tiers: expected a table of category = tier")
        for cat, tier in table.items():
            if tier not in catalog.tiers:
                raise ConfigError(f"routing.options.prior.tiers.{cat}: unknown tier {tier!r} (tiers: {', '.join(tiers)})")
        self.registry = dict(settings.registry)
        self.tiers = {**TIERS, **dict(table)}
        self.min_confidence = float(o["min_confidence"])
        self.sticky = bool(o["sticky"])
        self.horizon = max(1, int(o["horizon_turns"]))
        self.output_tokens = max(1, int(o["output_tokens"]))
        self.conversations: Any = None
        if self.sticky:
            from ..conversation import ConversationState

            redis_url = (settings.raw.get("resilience") or {}).get("redis_url") or ""
            self.conversations = ConversationState(int(o["conversations"]), float(o["conversation_ttl"]), redis_url)
        self.margin = float(o["switch_margin"])
        if not 0 <= self.margin < 1:
            raise ConfigError(f"routing.options.prior.switch_margin: must be a share between 0 and 1, got {self.margin!r}")
        self.max_tier = str(o["max_tier"] or "")
        if self.max_tier and self.max_tier not in catalog.tiers:
            raise ConfigError(f"routing.options.prior.max_tier: unknown tier {self.max_tier!r} (tiers: {', '.join(tiers)})")
        self.learned_below = float(o["learned_below"])
        self.deep_confidence = float(o["deep_confidence"])
        self._learned: Any = None
        if o["learned"]:
            self._learned = _learned_escalator(settings)

    # -- the tier the work asks for ------------------------------------------------
    def _need(self, request: RouteRequest, v: View) -> tuple[str, float, list[str], str | None]:
        if v.side is not None:
            return self.fast, 0.9, [f"harness side request ({_SIDE_WHY[v.side]}): fast tier"], "side_request"
        if not v.user.strip():
            what = (f"{v.images} image(s)" if v.images else "") + (f"{' and ' if v.images else ''}{v.documents} document(s)"
                                                                   if v.documents else "")
            why = f"no text to read ({what})" if what else "no text in the latest user turn"
            return self.default, 0.3, [f"{why}: safe default tier"], None
        bounded = short_output(v.task)
        quick = len(v.user) < 80 and _QUESTION.match(v.user.strip().lower()) is not None
        cat = categorize(v.task, short_output=bounded, coding_harness=v.harness and not quick)
        reasons: list[str] = []
        if cat.name is None or (quick and cat.score < _QUICK_MAX_SCORE):
            if quick or (len(v.user) < 40 and not v.harness):
                return self.fast, 0.5, ["short question, no task category that needs reasoning: fast tier"], None
            if v.harness:
                return self.default, 0.5, ["coding-agent turn, no harder category recognised: the seeds' agent tier "
                                           f"({self.default})"], "agent_step"
            return self.default, 0.4, ["no clear task category: safe default tier"], None
        name = cat.name
        if name in self.registry:
            tier = self.registry[name]
            source = "registry" if tier != TIERS.get(name) else "seeds"
        else:
            tier = self.tiers.get(name, self.default)
            source = "seeds" if tier == TIERS.get(name) else "config"
        cue = f" ('{cat.cues[0]}')" if cat.cues else ""
        if bounded and tier == self.fast:
            cue += ", short bounded answer"
        reasons.append(f"{LABELS[name]}{cue}, confidence {cat.confidence:.2f}: {tier} ({source})")
        confidence = cat.confidence
        idx = self.catalog.tier_index
        if cat.confidence < self.min_confidence and idx(tier) < idx(self.default):
            tier = self.default
            reasons.append(f"category uncertain: at least {self.default}")
        if idx(tier) < idx(self.default) and confidence < 0.5 and not bounded:
            low = v.task.lower()
            hit = next((w for w in _STAKES if w in low), None)
            if hit is not None:
                tier = self.default
                reasons.append(f"high stakes ('{hit}') and the category is uncertain: at least {self.default}")
        if name in _DOC_TASKS and not v.harness and v.prompt_tokens > _LONG_DOC_TOKENS and idx(tier) < idx(self.deep):
            tier = self.deep
            reasons.append(f"long documents ({v.prompt_tokens:,} tokens): {self.deep} reads long context best (seeds)")
        return tier, confidence, reasons, name

    def _escalate(self, tier: str, v: View, reasons: list[str]) -> str:
        if self._learned is None:
            return tier
        try:
            up = int(self._learned(RouteRequest({"messages": [{"role": "user", "content": v.task}],
                                                 "max_tokens": v.max_tokens or 1024})))
        except Exception:  # noqa: BLE001 - the learned score is advice; the prior stands without it
            return tier
        order = [t for t in self.catalog.tier_order if t in (self.fast, self.default, self.deep)]
        learned_tier = order[min(max(up, 0), len(order) - 1)]
        if order.index(learned_tier) > (order.index(tier) if tier in order else 0):
            reasons.append(f"learned: predicted cheap-tier score low (harder): raised to {learned_tier}")
            return learned_tier
        return tier

    # -- the conversation ----------------------------------------------------------
    def _stay_or_switch(self, need: str, current: str, age: float, v: View, reasons: list[str],
                        confidence: float = 1.0) -> tuple[str | None, str]:
        """(model id to use, tier) given the tier the turn needs, the conversation's model, the
        seconds since its last turn (its cache is warm while that is within the breakpoints' lifetime)
        and the confidence in the task's category."""
        cat = self.catalog
        cur_model = cat.get(current)
        cur_tier = cat.tier_of(current)
        if cur_model is None or cur_tier is None:
            return None, need
        idx = cat.tier_index
        if need == self.deep and idx(need) > idx(cur_tier) and confidence < self.deep_confidence:
            lower = self.default if idx(self.default) > idx(cur_tier) else cur_tier
            reasons.append(f"deep task uncertain (confidence {confidence:.2f} < {self.deep_confidence:.2f}): a "
                           f"conversation moves up to {self.deep} only for a confident one; at most {lower}")
            need = lower
        want = cat.model_for_tier(need)
        if want.id == current:
            reasons.append(f"conversation stays on {current}")
            return current, need
        from ..cachesim import switch_reckoning

        prompt = v.prompt_tokens
        warm = v.cache_ttl > 0 and age < v.cache_ttl
        new_tokens = min(prompt, 2000) if warm else prompt
        # turns still to come: at least ``horizon_turns``; a conversation that has run n turns is
        # expected to run about n more (capped), so a long stay is not re-justified 3 turns at a time.
        # A move down to the fast tier serves a quick task (a lookup, a one-command answer), after which
        # the conversation's work comes back: it is priced over ``horizon_turns`` only.
        horizon = self.horizon if need == self.fast and idx(need) < idx(cur_tier) else \
            min(_MAX_HORIZON, max(self.horizon, v.turns // 2))
        if _COMPACTION.search(v.user[:600].lower()) is not None:
            # nothing follows on this prefix: a move re-writes the whole conversation for this request alone
            horizon = 1
            reasons.append("compaction (a summary of the conversation so far): a move is priced over this request only")
        rk = switch_reckoning(cur_model, want, prefix_tokens=prompt - new_tokens, new_tokens=new_tokens,
                              output_tokens=self.output_tokens, turns=horizon, growth_tokens=1000,
                              ttl="1h" if v.cache_ttl > 300 else "5m", margin=self.margin)
        if not warm:
            reasons.append("conversation's cache is cold (" + (f"last turn {age:.0f} s ago" if v.cache_ttl
                                                                 else "no cache breakpoints") + ")")
        if idx(need) > idx(cur_tier):
            if v.continuation:
                reasons.append(f"needs {need}, but mid tool loop: stays on {current} until the next user turn "
                               f"({rk.text(current, want.id)})")
                return current, cur_tier
            reasons.append(f"needs {need}: moves up for capability ({rk.text(current, want.id)})")
            return want.id, need
        if rk.pays:
            reasons.append(rk.text(current, want.id))
            return want.id, need
        reasons.append(f"stays on {current}: {rk.text(current, want.id)}")
        return current, cur_tier

    def _decide(self, request: RouteRequest, current: tuple[str, float] | None) -> tuple[Decision, bool]:
        """The decision, and whether the conversation's model is to be remembered (not for side requests)."""
        v = view_of(request.body)
        tier, confidence, reasons, task = self._need(request, v)
        idx = self.catalog.tier_index
        if v.side is None and confidence < self.learned_below and idx(tier) < idx(self.deep) and v.user.strip():
            tier = self._escalate(tier, v, reasons)
        if self.max_tier and idx(tier) > idx(self.max_tier):
            reasons.append(f"capped at {self.max_tier} (routing.options.prior.max_tier)")
            tier = self.max_tier
        if v.odd_roles:
            reasons.append(f"messages with role(s) {', '.join(v.odd_roles)} were not read as the task")
        if v.harness:
            reasons.append(f"routed on the latest user turn{f' and {v.tool_results} tool result(s)' if v.tool_results else ''}"
                           f"; harness system prompt and {v.tools} tools set aside")
        model = None
        if current is not None and v.side is None and v.turns > 1:
            model, tier = self._stay_or_switch(tier, current[0], current[1], v, reasons, confidence)
        if model is None:
            model = self.catalog.model_for_tier(tier).id
        return Decision(tier=tier, confidence=confidence, reasons=tuple(reasons), router=self.name, model=model,
                        task=request.task), v.side is None

    def decide(self, request: RouteRequest) -> Decision:
        if self.conversations is None:
            return self._decide(request, None)[0]
        key = conversation_key(request.body)
        d, remember = self._decide(request, self.conversations.get(key))
        if remember and key is not None and d.model:
            self.conversations.put(key, d.model)
        return d

    async def adecide(self, request: RouteRequest) -> Decision:
        if self.conversations is None or not self.conversations.shared:
            return self.decide(request)
        key = conversation_key(request.body)
        d, remember = self._decide(request, await self.conversations.aget(key))
        if remember and key is not None and d.model:
            await self.conversations.aput(key, d.model)
        return d


def _learned_escalator(settings: "Settings") -> Any:
    """``LearnedRouter.escalation`` when the learned router offers it (R2's interface), else None."""
    try:
        from .learned import LearnedRouter
    except Exception:  # noqa: BLE001 - numpy missing or the artifact unreadable: the prior works alone
        return None
    if not hasattr(LearnedRouter, "escalation"):
        return None
    try:
        router = LearnedRouter(settings)
    except Exception:  # noqa: BLE001
        return None
    return router.escalation
