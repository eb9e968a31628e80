"""The simulated workload the shadow loop is proven on (``tierwise demo --shadow``, bench/shadow_loop.py).

Prompts are generated per task type from templates (distinct inputs, phrased so the offline
upstream's hidden quality model, ``tierwise.upstream.quality``, recognises the task type even on
``auto`` calls). The truth (which task types are fine on Haiku) lives only in that model; this module
just reads it back to score the loop's answers at the end, never to steer it.
"""

from __future__ import annotations

import itertools
import random
from typing import Any, Iterator

from ..upstream.quality import TRUTH

__all__ = ["TEMPLATES", "prompts", "workload", "true_tier", "true_verdict"]

_A = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent"]
_B = ["invoice", "parcel", "login", "refund", "subscription", "upgrade", "password", "delivery", "warranty", "account"]
_C = ["Monday", "March", "Q3", "last week", "yesterday", "2025", "the weekend", "noon", "the launch", "the audit"]

TEMPLATES: dict[str, tuple[str | None, int, str]] = {
    # task: (system, max_tokens, prompt template with {a} {b} {c})
    "classify_intent": ("Classify the customer message into one of: billing, shipping, returns, account, other. "
                        "Reply with the label only.", 20, "Classify the intent: {a} customer asks about their {b} from {c}."),
    "extract_entities": (None, 200, "Extract people, organisations, dates and amounts as JSON: {a} paid the {b} fee on {c}."),
    "moderate_content": (None, 20, "Label the comment as ok, spam or harassment: '{a} {b} deals, {c} only!'"),
    "summarize_short": (None, 120, "Summarize in one line: {a} reported a {b} incident during {c} and fixed it."),
    "draft_email": (None, 400, "Draft a polite email to {a} about the {b} delay expected around {c}."),
    "synthesize_documents": (None, 600, "Synthesize these notes: {a} memo on {b}; the {c} review; the customer survey."),
    "generate_code": (None, 800, "Write a Python function that validates a {b} record for {a} created in {c}."),
    "review_code": (None, 600, "Review this function for bugs: def {b}_total(xs): return sum(xs) / len(xs)  # {a} {c}"),
    "plan_agent_steps": (None, 700, "Plan the steps an agent takes to migrate {a}'s {b} service before {c}."),
    "draft_longform": (None, 1500, "Write a 1,200-word article on how {a} handled {b} growth in {c}."),
}


def prompts(task: str, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct prompts of ``task`` (cycling, in a seeded order, through the template's 1,000 fillings)."""
    tmpl = TEMPLATES[task][2]
    combos = list(itertools.product(_A, _B, _C))
    random.Random(f"{seed}:{task}").shuffle(combos)
    return [tmpl.format(a=a, b=b, c=c) + ("" if i < len(combos) else f" (case {i})")
            for i, (a, b, c) in zip(range(n), itertools.cycle(combos))]


def workload(per_task: int, *, auto_share: float = 0.3, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Requests, tasks interleaved: ``{"task" | None, "prompt", "system", "max_tokens", "kind"}``; a share of
    each task type's prompts is sent as model ``auto`` (no task named)."""
    rng = random.Random(seed)
    lists = {t: prompts(t, per_task, seed) for t in TEMPLATES}
    for i in range(per_task):
        for task in TEMPLATES:
            system, mt, _ = TEMPLATES[task]
            as_auto = rng.random() < auto_share
            yield {"task": None if as_auto else task, "kind": task, "prompt": lists[task][i], "system": system,
                   "max_tokens": mt}


def true_tier(task: str, *, move_below: float = 0.05) -> str:
    """The tier the hidden truth puts ``task`` on, of the fast/balanced pair."""
    return "fast" if TRUTH[task]["haiku"] < move_below else "balanced"


def true_verdict(task: str, cheap_family: str = "haiku", *, move_below: float = 0.05, stay_above: float = 0.08) -> str:
    rate = TRUTH[task][cheap_family]
    return "cheap" if rate < move_below else "strong" if rate > stay_above else "review"
