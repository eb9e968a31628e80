"""Complexity signals from the seeds: length, conditional and multi-step reasoning, comparison
or analysis, several documents, code, turns, tools, math, stakes, and short schema-bound output.

Built for the hot path: the text is lower-cased and split into words once; most signals are set
look-ups or substring tests, with one small regular expression for numbered documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import repeat
from operator import contains
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import RouteRequest

__all__ = ["Signals", "extract", "DESCRIPTIONS"]

HARNESS_TOOLS = 4  # as routing.view: this many tools and the system prompt describes a harness
_MONEY = re.compile(r"\$\s?\d")
_WORD = re.compile(r"[a-z0-9_#;']+")
_DOCS = re.compile(r"<document\b|\b(?:document|doc|source|paper|exhibit|appendix|attachment)\s*#?\s*[0-9a-d]\b")

CONDITIONAL_WORDS = frozenset({"if", "unless", "assuming", "except", "otherwise", "whether", "provided"})
CONDITIONAL_PHRASES = ("given that", "in case", "only when", "as long as")
MULTI_STEP_WORDS = frozenset({"plan", "derive", "prove", "workflow", "sequence", "roadmap", "multi-step", "stepwise"})
MULTI_STEP_PHRASES = ("step by step", "step-by-step", "walk me through", "break it down", "break this down",
                      "multi step", "then finally", "and then")
ANALYSIS_WORDS = frozenset({"compare", "comparison", "contrast", "analyze", "analyse", "analysis", "tradeoff", "tradeoffs",
                            "evaluate", "assess", "critique", "reconcile", "contradict", "contradicts", "contradiction",
                            "contradictions", "inconsistent", "inconsistency", "inconsistencies", "synthesize",
                            "synthesise", "justify", "recommend", "implications"})
ANALYSIS_PHRASES = ("trade-off", "pros and cons", "root cause", "why does")
CODE_MARKERS = ("```", "def ", "class ", "function ", "import ", "#include", "=>", "){", ") {", "select ", "};")
CODE_VERBS = frozenset({"write", "implement", "refactor", "debug", "fix", "review", "optimize", "port"})
CODE_NOUNS = frozenset({"code", "function", "functions", "class", "script", "module", "bug", "bugs", "query", "endpoint",
                        "test", "tests", "regex", "sql", "api", "program"})
MATH_WORDS = frozenset({"total", "percent", "percentage", "probability", "equation", "solve", "integral", "average",
                        "sum", "ratio", "calculate", "compute"})
MATH_PHRASES = ("how many", "how much")
STAKES_WORDS = frozenset({"security", "vulnerability", "vulnerabilities", "exploit", "authentication", "authorization",
                          "payment", "payments", "legal", "contract", "contracts", "liability", "compliance", "medical",
                          "diagnosis", "irreversible", "delete", "lawsuit", "regulatory", "gdpr", "hipaa"})
STAKES_PHRASES = ("production database", "financial model")
SHORT_WORDS = frozenset({"classify", "categorize", "categorise", "label", "tag", "extract", "sentiment", "headline",
                         "tldr", "tl;dr", "intent", "yes/no"})
SHORT_PHRASES = ("yes or no", "true or false", "one word", "single word", "in one sentence", "return json", "as json",
                 "json object", "which category")

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


class _Built:
    """Signals built for the hot path: the same slots, set directly, then the instance becomes a
    :class:`Signals` (``__class__`` assignment: the layouts match, see the test). A frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__``, ~6x the cost of the whole build here."""

    __slots__ = ("chars", "tokens", "conditionals", "multi_step", "analysis", "documents", "code", "code_task", "turns",
                 "tools", "math", "stakes", "short_output")

    def __init__(self, chars: int, tokens: int, conditionals: int, multi_step: bool, analysis: bool, documents: int,
                 code: bool, code_task: bool, turns: int, tools: int, math: bool, stakes: bool, short_output: bool) -> None:
        self.chars = chars
        self.tokens = tokens
        self.conditionals = conditionals
        self.multi_step = multi_step
        self.analysis = analysis
        self.documents = documents
        self.code = code
        self.code_task = code_task
        self.turns = turns
        self.tools = tools
        self.math = math
        self.stakes = stakes
        self.short_output = short_output


def _has(words: set[bytes], text: str, vocab: frozenset[bytes], phrases: tuple[str, ...]) -> bool:
    return not words.isdisjoint(vocab) or any(map(contains, repeat(text), phrases))


def _b(words: frozenset[str]) -> frozenset[bytes]:
    return frozenset(w.encode() for w in words)


# the vocabularies as the tokens come (bytes: see ``_TOKEN_TABLE``)
_CONDITIONAL_B, _MULTI_STEP_B, _ANALYSIS_B = _b(CONDITIONAL_WORDS), _b(MULTI_STEP_WORDS), _b(ANALYSIS_WORDS)
_CODE_VERBS_B, _CODE_NOUNS_B, _MATH_B = _b(CODE_VERBS), _b(CODE_NOUNS), _b(MATH_WORDS)
_STAKES_B, _SHORT_B = _b(STAKES_WORDS), _b(SHORT_WORDS)
_FIRST, _THEN = b"first", b"then"
# ``_WORD``'s tokens without a regular expression: its class is ASCII only, so on the UTF-8 bytes of the
# lower-cased text every byte outside the class becomes a space and ``split()`` yields the same tokens
_TOKEN_CHARS = b"abcdefghijklmnopqrstuvwxyz0123456789_#;'"
_TOKEN_TABLE = bytes(c if c in _TOKEN_CHARS else 32 for c in range(256))


def tokens(low: str) -> list[bytes]:
    """``_WORD.findall(low)``, each token UTF-8 encoded (``low`` is lower-cased text)."""
    try:
        data = low.encode()
    except UnicodeEncodeError:  # lone surrogates: outside the class whatever their bytes
        data = low.encode("utf-8", "surrogatepass")
    return data.translate(_TOKEN_TABLE).split()


_DOC_HINTS = ("doc", "source", "paper", "exhibit", "appendix", "attachment")
_BLOCK_DOCS = ("document", "image")  # a tuple: a block type may be any JSON value, hashable or not


def _attached(messages: object) -> int:
    """Document and image blocks in the messages."""
    n = 0
    for msg in messages if isinstance(messages, (list, tuple)) else ():
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, list):
            for b in content:
                if isinstance(b, dict) and b.get("type") in _BLOCK_DOCS:
                    n += 1
    return n


def extract(request: "RouteRequest") -> Signals:
    text = request.text
    last = (request.last_user_text or text).lower()
    tokens_list = tokens(last)
    words = set(tokens_list)
    body = request.body
    messages = body.get("messages") or ()
    tools = body.get("tools")
    n_tools = len(tools) if isinstance(tools, list) else 0
    # an agent harness (many tools) sends its long system prompt on every turn: it describes the
    # harness, not the task, so code markers and documents are looked for in the latest user turn only
    low_all = last if n_tools >= HARNESS_TOOLS or len(text) == len(last) else text.lower()
    n_docs = len(_DOCS.findall(low_all)) if any(map(contains, repeat(low_all), _DOC_HINTS)) else 0
    n_docs += _attached(messages)
    # the conditional words among the tokens, counted (a C-level filter, not a Python loop per token)
    conditionals = sum(map(last.count, CONDITIONAL_PHRASES))
    if not words.isdisjoint(_CONDITIONAL_B):
        conditionals += len(list(filter(_CONDITIONAL_B.__contains__, tokens_list)))
    first_then = _FIRST in words and _THEN in words
    s = _Built(
        len(text),                                                              # chars
        (len(text) + 3) // 4,                                                   # tokens
        conditionals,
        first_then or _has(words, last, _MULTI_STEP_B, MULTI_STEP_PHRASES),    # multi_step
        _has(words, last, _ANALYSIS_B, ANALYSIS_PHRASES),                      # analysis
        n_docs,                                                                 # documents
        any(map(contains, repeat(low_all), CODE_MARKERS)),                      # code
        not words.isdisjoint(_CODE_VERBS_B) and not words.isdisjoint(_CODE_NOUNS_B),  # code_task
        len(messages),                                                          # turns
        n_tools,                                                                # tools
        # math: an amount of money ("$120"), not any "$" (shell variables, templates) next to any digit
        _has(words, last, _MATH_B, MATH_PHRASES) or ("$" in last and _MONEY.search(last) is not None),
        _has(words, last, _STAKES_B, STAKES_PHRASES),                          # stakes
        _has(words, last, _SHORT_B, SHORT_PHRASES),                            # short_output
    )
    s.__class__ = Signals  # type: ignore[assignment]
    return s  # type: ignore[return-value]
