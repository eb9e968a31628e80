"""Complexity signals from the seeds: length, conditional and multi-step reasoning, comparison
or analysis, several documents, code, turns, tools, math, stakes, and short schema-bound output.

Cheap regular expressions over the request text; each signal has a phrase a person reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import RouteRequest

__all__ = ["Signals", "extract", "DESCRIPTIONS"]

_FLAGS = re.IGNORECASE
CONDITIONAL = re.compile(r"\b(if|unless|assuming|given that|provided that|except|otherwise|in case|only when)\b", _FLAGS)
MULTI_STEP = re.compile(
    r"(step[- ]by[- ]step|\bfirst\b.*\bthen\b|\bthen\b.*\bfinally\b|\bplan\b|\bmulti[- ]step\b|\bderive\b|\bprove\b|"
    r"\bwalk me through\b|\bbreak (it|this) down\b|\bsequence of\b|\bworkflow\b)",
    _FLAGS | re.DOTALL,
)
ANALYSIS = re.compile(
    r"\b(compare|comparison|contrast|analy[sz]e|analysis|trade-?offs?|evaluate|assess|pros and cons|critique|"
    r"reconcile|contradict\w*|inconsisten\w*|synthesi[sz]e|root cause|why does|justify|recommend)\b",
    _FLAGS,
)
DOCUMENTS = re.compile(r"(<document\b|\bdocument\s*\d+\b|\bsources?\s*\d+\b|\bpaper\s*\d+\b|\bexhibit\s+[a-z0-9]\b|\battached (files|documents)\b)", _FLAGS)
CODE = re.compile(r"(```|\bdef \w+\(|\bclass \w+[:(]|\bfunction \w+\(|\bimport \w+|#include\b|\bSELECT\b.+\bFROM\b|=>|\breturn\b.*;)", re.DOTALL)
CODE_TASK = re.compile(r"\b(write|implement|refactor|debug|fix|review)\b.{0,40}\b(code|function|class|script|module|bug|query|endpoint|test)s?\b", _FLAGS)
MATH = re.compile(r"(\bhow (many|much)\b|\btotal\b|\bpercent\w*\b|\bprobability\b|\bequation\b|\bsolve\b|\bintegral\b|\$\d)", _FLAGS)
STAKES = re.compile(
    r"\b(security|vulnerab\w*|exploit|auth(entication|orization)?|payments?|legal|contract|liabilit\w*|compliance|"
    r"medical|diagnos\w*|irreversible|delete|production database|financial model)\b",
    _FLAGS,
)
SHORT_OUTPUT = re.compile(
    r"\b(classify|categori[sz]e|label|tag|extract|sentiment|yes or no|true or false|one word|single word|"
    r"headline|tl;?dr|in one sentence|return json|as json|json object|which category|intent)\b",
    _FLAGS,
)

DESCRIPTIONS = {
    "long_prompt": "long prompt ({tokens:,} tokens)",
    "very_long_prompt": "very long prompt ({tokens:,} tokens)",
    "conditional": "conditional reasoning ({n} conditions)",
    "multi_step": "asks for multi-step reasoning",
    "analysis": "asks for comparison or analysis",
    "documents": "several documents referenced ({n})",
    "code": "code present",
    "code_task": "code generation or review",
    "turns": "long conversation ({n} turns)",
    "tools": "tools available ({n})",
    "math": "math or quantities",
    "stakes": "high-stakes domain (security, money, legal, irreversible)",
    "short_output": "short, schema-bound output (classify/extract/label)",
    "short_prompt": "short, bounded prompt",
}


@dataclass(frozen=True, slots=True)
class Signals:
    chars: int
    tokens: int
    conditionals: int
    multi_step: bool
    analysis: bool
    documents: int
    code: bool
    code_task: bool
    turns: int
    tools: int
    math: bool
    stakes: bool
    short_output: bool


def extract(request: "RouteRequest") -> Signals:
    text = request.text
    last = request.last_user_text or text
    body = request.body
    messages = body.get("messages") or ()
    n_docs = len(DOCUMENTS.findall(text))
    for msg in messages:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, list):
            n_docs += sum(1 for b in content if isinstance(b, dict) and b.get("type") in ("document", "image"))
    tools = body.get("tools")
    return Signals(
        chars=len(text),
        tokens=(len(text) + 3) // 4,
        conditionals=len(CONDITIONAL.findall(last)),
        multi_step=bool(MULTI_STEP.search(last)),
        analysis=bool(ANALYSIS.search(last)),
        documents=n_docs,
        code=bool(CODE.search(text)),
        code_task=bool(CODE_TASK.search(last)),
        turns=len(messages),
        tools=len(tools) if isinstance(tools, list) else 0,
        math=bool(MATH.search(last)),
        stakes=bool(STAKES.search(last)),
        short_output=bool(SHORT_OUTPUT.search(last)),
    )
