"""The LLM judge: scores every tier's answer to one input against a rubric, blind.

Blind means the judge never learns which tier or model wrote an answer: the answers are
anonymised (model ids, aliases, family and tier names redacted, as models sometimes name
themselves) and shown as "Response 1..N" in an order shuffled per input. The mapping back to
tiers stays in this process.

On the offline upstream there is no model to ask; :class:`OfflineJudge` is a deterministic
stand-in that sees exactly the same anonymised, shuffled candidates. Its scores demonstrate the
mechanics (blinding, aggregation, recommendation), not model quality.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from ..cost import Usage
from ..upstream.quality import marker_of
from .graders import EvalItem, Grade, extract_json

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..upstream.base import Upstream

__all__ = ["Judge", "LLMJudge", "OfflineJudge", "JudgeResult", "redact", "blind_order", "judge_prompt", "answer_hash",
           "judge_identity"]

_OFFLINE_PREFIX = re.compile(r"^\s*\[offline synthetic answer from [^\]]*\]\s*")


def redact(text: str, catalog: "Catalog") -> str:
    """``text`` with anything naming a model or tier replaced by ``[model]``."""
    text = _OFFLINE_PREFIX.sub("", text)
    names: set[str] = set()
    for m in catalog.listed():
        names.add(m.id)
        names.update(m.aliases)
        if m.family:
            names.add(m.family)
    for mid in catalog.tiers.values():
        names.add(mid)
    names.update(("haiku", "sonnet", "opus", "fable", "mythos"))
    pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True) if n)
    text = re.sub(rf"(?i)\b(?:claude[\s-]*)?(?:{pattern})(?:[\s-]*\d+(?:[.-]\d+)*)?\b", "[model]", text)
    return text


def blind_order(keys: list[str], seed: str) -> list[str]:
    """``keys`` shuffled deterministically per ``seed`` (the run and item), so a resume judges alike."""
    out = sorted(keys)
    rng = random.Random(int(hashlib.blake2b(seed.encode(), digest_size=8).hexdigest(), 16))
    rng.shuffle(out)
    return out


def judge_prompt(item: EvalItem, rubric: str, candidates: list[str]) -> str:
    parts = [
        "You are grading answers to one task. Several systems answered; you do not know which wrote which, "
        "and it does not matter: judge only the text of each answer against the rubric.",
        f"\n<rubric>\n{rubric}\n</rubric>",
        f"\n<task_input>\n{item.prompt}\n</task_input>",
    ]
    if item.reference:
        parts.append(f"\n<reference_answer>\n{item.reference}\n</reference_answer>")
    for i, c in enumerate(candidates, 1):
        parts.append(f"\n<response id=\"{i}\">\n{c}\n</response>")
    parts.append(
        "\nScore each response from 0 (fails the rubric) to 10 (fully meets it). Reply with JSON only: "
        '{"scores": [{"response": 1, "score": 7, "reason": "one short sentence"}, ...]} with one entry per response.')
    return "\n".join(parts)


@dataclass(slots=True)
class JudgeResult:
    grades: dict[str, Grade | None]      # key -> grade (None: the judge gave no usable score)
    usage: Usage | None = None
    model: str | None = None
    prompt: str = ""
    order: list[str] = field(default_factory=list)  # the keys in the order the judge was shown them


def answer_hash(text: str) -> str:
    """What a judgement is cached by: the answer's text, whichever tier wrote it and wherever it was shown."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def judge_identity(judge: "Judge", item: EvalItem) -> tuple[str, str]:
    """(the judge and its model, a hash of everything else the judge is told about ``item``: rubric,
    task input, reference answer, pass mark). With an answer's hash: the key of a cached judgement."""
    who = f"{judge.name}:{getattr(judge, 'model', None) or '-'}"
    mark = _pass_mark(item, float(getattr(judge, "pass_mark", 0.6)))
    context = "\x00".join((_rubric(item), item.prompt, item.reference or "", repr(mark)))
    return who[:160], hashlib.sha256(context.encode("utf-8", "replace")).hexdigest()


class Judge(Protocol):
    name: str

    async def judge(self, item: EvalItem, outputs: Mapping[str, str], *, seed: str) -> JudgeResult: ...


def _rubric(item: EvalItem) -> str:
    for c in item.checks:
        if c["type"] == "judge" and c.get("rubric"):
            return str(c["rubric"])
    return item.rubric or ""


def _pass_mark(item: EvalItem, default: float) -> float:
    for c in item.checks:
        if c["type"] == "judge" and c.get("pass") is not None:
            return float(c["pass"])
    return default


class LLMJudge:
    """A Claude model as the judge, through the configured upstream."""

    name = "llm-judge"

    def __init__(self, upstream: "Upstream", model: str, catalog: "Catalog", *, pass_mark: float = 0.6) -> None:
        self.upstream = upstream
        self.model = model
        self.catalog = catalog
        self.pass_mark = pass_mark

    async def judge(self, item: EvalItem, outputs: Mapping[str, str], *, seed: str) -> JudgeResult:
        from ..errors import APIError
        from ..upstream.base import call_json

        order = blind_order(list(outputs), seed)
        candidates = [redact(outputs[k], self.catalog) for k in order]
        prompt = judge_prompt(item, _rubric(item), candidates)
        params = {"model": self.model, "max_tokens": 200 + 80 * len(order),
                  "messages": [{"role": "user", "content": prompt}]}
        try:
            msg = await call_json(self.upstream, params)
        except APIError as exc:
            return JudgeResult(dict.fromkeys(order), prompt=prompt, model=self.model,
                               usage=None, order=order) if exc.status < 500 else _raise(exc)
        usage = Usage.from_api(msg.get("usage"))
        text = "".join(b.get("text", "") for b in msg.get("content") or () if isinstance(b, dict))
        grades = parse_scores(text, order, self._pass(item))
        return JudgeResult(grades, usage=usage, model=msg.get("model") or self.model, prompt=prompt, order=order)

    def _pass(self, item: EvalItem) -> float:
        return _pass_mark(item, self.pass_mark)


def _raise(exc: Exception) -> Any:
    raise exc


def parse_scores(text: str, order: list[str], pass_mark: float) -> dict[str, Grade | None]:
    """Map the judge's JSON (``{"scores": [{"response": i, "score": 0-10}]}``) back to keys."""
    out: dict[str, Grade | None] = dict.fromkeys(order)
    try:
        data = extract_json(text)
    except ValueError:
        return out
    entries = data.get("scores") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        return out
    for e in entries:
        if not isinstance(e, dict):
            continue
        try:
            i = int(e.get("response"))
            s = float(e.get("score"))
        except (TypeError, ValueError):
            continue
        if 1 <= i <= len(order) and 0 <= s <= 10:
            score = s / 10.0
            out[order[i - 1]] = Grade("judge", score >= pass_mark, score, str(e.get("reason") or "")[:300])
    return out


class OfflineJudge:
    """Deterministic stand-in judge for the offline upstream (no model to ask).

    It sees the same anonymised, shuffled candidates an LLM judge would; its score mixes answer
    length against the rubric's wish for substance with a hash of the text. Synthetic by design.
    """

    name = "offline-judge"

    def __init__(self, catalog: "Catalog", *, pass_mark: float = 0.6, target_words: int = 40) -> None:
        self.catalog = catalog
        self.pass_mark = pass_mark
        self.target_words = target_words

    async def judge(self, item: EvalItem, outputs: Mapping[str, str], *, seed: str) -> JudgeResult:
        order = blind_order(list(outputs), seed)
        candidates = [redact(outputs[k], self.catalog) for k in order]
        prompt = judge_prompt(item, _rubric(item), candidates)
        mark = _pass_mark(item, self.pass_mark)
        grades: dict[str, Grade | None] = {}
        for key, text in zip(order, candidates):
            words = len(text.split())
            h = hashlib.blake2b(f"{_rubric(item)}\x00{text}".encode(), digest_size=8).digest()
            u = int.from_bytes(h, "big") / 2**64
            score = round(0.6 * min(1.0, words / self.target_words) + 0.4 * u, 4)
            detail = f"offline judge: {words} words"
            seen = marker_of(text)  # the simulation's hidden quality marker (upstream/quality.py), when present
            if seen is not None:
                score, detail = (0.9 if seen else 0.1), f"offline judge: the answer's check marker says {'pass' if seen else 'fail'}"
            grades[key] = Grade("judge", score >= mark, score, detail)
        return JudgeResult(grades, usage=None, model=None, prompt=prompt, order=order)
