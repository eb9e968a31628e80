"""The offline upstream's hidden quality model (``upstream.offline.quality = "sim"``).

Real models are right or wrong per input; the offline upstream's synthetic answers are neither. With
this model on, every offline answer ends with a checkable marker, ``[check: pass]`` or
``[check: fail]``, drawn deterministically from the answer's task type, the answering model's
family and the input: some task types are truly fine on Haiku, some are not (``TRUTH``). The marker
names no model or tier, so blind grading stays blind; the offline judge and a ``regex`` check read it.

The task type comes from the ``x-tierwise-task`` header when a caller sends it, else from the
prompt's wording (``CUES``: the simulation's prompts, ``tierwise.shadow.sim``, and the bundled demo
workload are phrased per task type). Nothing on the routing side reads this module: the truth is
what the shadow loop has to discover. ``inject`` changes a rate at run time (a regression).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Mapping

__all__ = ["QualityModel", "TRUTH", "CUES", "MARK_PASS", "MARK_FAIL", "marker_of", "task_of_text"]

MARK_PASS = "[check: pass]"
MARK_FAIL = "[check: fail]"
_MARK = re.compile(r"\[check: (pass|fail)\]")

# task type -> model family -> true error rate. Chosen well away from the 5% / 8% lines so the truth
# has one right verdict: Haiku fine (<= 2%) or not (>= 15%).
TRUTH: dict[str, dict[str, float]] = {
    "classify_intent": {"haiku": 0.01, "sonnet": 0.01, "opus": 0.01},
    "extract_entities": {"haiku": 0.02, "sonnet": 0.01, "opus": 0.01},
    "moderate_content": {"haiku": 0.01, "sonnet": 0.01, "opus": 0.01},
    "summarize_short": {"haiku": 0.18, "sonnet": 0.02, "opus": 0.02},      # on Haiku in the registry, should not be
    "draft_email": {"haiku": 0.02, "sonnet": 0.01, "opus": 0.01},          # on Sonnet, fine on Haiku
    "synthesize_documents": {"haiku": 0.015, "sonnet": 0.01, "opus": 0.01},
    "generate_code": {"haiku": 0.25, "sonnet": 0.04, "opus": 0.02},
    "review_code": {"haiku": 0.20, "sonnet": 0.03, "opus": 0.02},
    "plan_agent_steps": {"haiku": 0.30, "sonnet": 0.05, "opus": 0.03},
    "draft_longform": {"haiku": 0.16, "sonnet": 0.03, "opus": 0.02},
    "security_review": {"haiku": 0.40, "sonnet": 0.20, "opus": 0.03},
    "plan_irreversible": {"haiku": 0.35, "sonnet": 0.02, "opus": 0.01},
}
DEFAULT_RATES = {"haiku": 0.10, "sonnet": 0.04, "opus": 0.03}

# the prompt's opening words -> task type, for calls that do not name their task (model "auto")
CUES: list[tuple[re.Pattern[str], str]] = [(re.compile(p, re.I), t) for p, t in (
    (r"^classify the (intent|customer)|reply with the label only.*billing", "classify_intent"),
    (r"^extract (the )?(people|entities)|^extract people", "extract_entities"),
    (r"^label the comment|^moderate", "moderate_content"),
    (r"^(summari[sz]e|tl;dr|write a one-line headline)", "summarize_short"),
    (r"^(draft|write) (a |an )?(short |polite |follow-up )*email", "draft_email"),
    (r"^synthesi[sz]e|^<document|^document 1", "synthesize_documents"),
    (r"^(write|implement) (a |an )?(small )?(python|typescript|go|sql|rust|bash)", "generate_code"),
    (r"^review this .*secur", "security_review"),
    (r"^review this .*(bugs|problems|function|handler)", "review_code"),
    (r"^(plan|break down) the steps", "plan_agent_steps"),
    (r"^write a [\d,]+-word", "draft_longform"),
    (r"^plan the (deletion|irreversible|migration of production)", "plan_irreversible"),
)]


def task_of_text(text: str) -> str | None:
    t = text.strip()
    for pattern, task in CUES:
        if pattern.search(t):
            return task
    return None


def marker_of(text: str) -> bool | None:
    """True / False for an answer carrying a pass / fail marker, None for one without."""
    m = _MARK.search(text or "")
    return None if m is None else m.group(1) == "pass"


def _family(model: str) -> str:
    for fam in ("haiku", "sonnet", "opus"):
        if fam in model:
            return fam
    return "opus"  # fable, mythos and unknown ids: at least as good as Opus here


def _last_user_text(params: Mapping[str, Any]) -> str:
    for m in reversed(params.get("messages") or ()):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return "\n".join(str(b.get("text", "")) for b in c if isinstance(b, dict) and b.get("type") == "text")
    return ""


class QualityModel:
    def __init__(self, truth: Mapping[str, Mapping[str, float]] | None = None, salt: str = "tierwise-sim") -> None:
        self.truth = {t: dict(r) for t, r in (truth or TRUTH).items()}
        self.salt = salt

    def rate(self, task: str | None, model: str) -> float:
        rates = self.truth.get(task or "", DEFAULT_RATES)
        return float(rates.get(_family(model), DEFAULT_RATES[_family(model)]))

    def inject(self, task: str, family: str, rate: float) -> None:
        """Change the true error rate of ``family`` on ``task`` from now on (a regression, or its fix)."""
        self.truth.setdefault(task, dict(DEFAULT_RATES))[family] = float(rate)

    def task_of(self, params: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
        named = headers.get("x-tierwise-task")
        if named:
            return named.strip().lower()
        system = params.get("system")
        text = _last_user_text(params)
        return task_of_text(text) or (task_of_text(system) if isinstance(system, str) else None)

    def correct(self, task: str | None, model: str, text: str) -> bool:
        """Whether ``model`` answers this input of ``task`` correctly (deterministic per input and family)."""
        h = hashlib.blake2b(f"{self.salt}\x00{_family(model)}\x00{text}".encode(), digest_size=8).digest()
        return int.from_bytes(h, "big") / 2**64 >= self.rate(task, model)

    def mark(self, message: dict[str, Any], params: Mapping[str, Any], headers: Mapping[str, str]) -> None:
        """Append the marker to the answer's last text block (in place)."""
        task = self.task_of(params, headers)
        ok = self.correct(task, str(message.get("model") or ""), _last_user_text(params))
        for block in reversed(message.get("content") or ()):
            if block.get("type") == "text":
                block["text"] = f"{block['text']} {MARK_PASS if ok else MARK_FAIL}"
                message["usage"]["output_tokens"] += 3
                return
