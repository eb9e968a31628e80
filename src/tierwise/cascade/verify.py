"""Verifiers: checks on an answer that decide whether a cascade escalates.

Each verifier looks at the finished Message (as JSON) and the request that produced it and returns a
``Verdict``. They are combinable: a cascade escalates on the first failing verdict, and the reasons
of failure can travel to the next rung as a short note.

- ``stop_reason``: fails on ``max_tokens`` (cut off) and ``refusal``.
- ``json_schema``: the text parses as JSON and validates against a schema.
- ``regex``: the text matches a pattern.
- ``tool_fields``: every ``tool_use`` block carries the fields its tool's ``input_schema`` requires.
- ``answer_score``: a cheap score from the answer text (empty, hedging, too short): fails below a threshold.
- ``llm_grader``: a model grades the answer against a rubric (through the same upstream seam).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

import orjson

from ..errors import ConfigError

__all__ = ["Verdict", "Verifier", "build_verifiers", "message_text", "VERIFIERS", "answer_score"]


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    verifier: str
    reason: str = ""
    score: float | None = None


class Verifier(Protocol):
    name: str

    async def check(self, message: Mapping[str, Any], request: Mapping[str, Any]) -> Verdict: ...


def message_text(message: Mapping[str, Any]) -> str:
    return "".join(b.get("text", "") for b in message.get("content") or () if isinstance(b, dict) and b.get("type") == "text")


def _strip_fence(text: str) -> str:
    t = text.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else ""
        if t.rstrip().endswith("```"):
            t = t.rstrip()[:-3]
    return t.strip()


class StopReason:
    name = "stop_reason"

    def __init__(self, fail_on: tuple[str, ...] = ("max_tokens", "refusal"), **_: Any) -> None:
        self.fail_on = tuple(fail_on)

    async def check(self, message: Mapping[str, Any], request: Mapping[str, Any]) -> Verdict:
        stop = message.get("stop_reason")
        if stop in self.fail_on:
            return Verdict(False, self.name, f"stop_reason was {stop}")
        return Verdict(True, self.name)


class JsonSchema:
    name = "json_schema"

    def __init__(self, schema: Mapping[str, Any] | None = None, **_: Any) -> None:
        import jsonschema

        self.schema = dict(schema or {})
        try:
            jsonschema.Draft202012Validator.check_schema(self.schema)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"verifier json_schema: invalid schema: {exc.message}") from None
        self.validator = jsonschema.Draft202012Validator(self.schema)

    async def check(self, message: Mapping[str, Any], request: Mapping[str, Any]) -> Verdict:
        text = _strip_fence(message_text(message))
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            return Verdict(False, self.name, "the answer is not valid JSON")
        errors = sorted(self.validator.iter_errors(data), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.path) or "(root)"
            return Verdict(False, self.name, f"JSON does not match the schema at {where}: {e.message}")
        return Verdict(True, self.name)


class Regex:
    name = "regex"

    def __init__(self, pattern: str = "", flags: str = "", **_: Any) -> None:
        try:
            self.re = re.compile(pattern, (re.I if "i" in flags else 0) | (re.S if "s" in flags else 0) | (re.M if "m" in flags else 0))
        except re.error as exc:
            raise ConfigError(f"verifier regex: bad pattern {pattern!r}: {exc}") from None

    async def check(self, message: Mapping[str, Any], request: Mapping[str, Any]) -> Verdict:
        if self.re.search(message_text(message)):
            return Verdict(True, self.name)
        return Verdict(False, self.name, f"the answer does not match /{self.re.pattern}/")


class ToolFields:
    name = "tool_fields"

    def __init__(self, **_: Any) -> None:
        pass

    async def check(self, message: Mapping[str, Any], request: Mapping[str, Any]) -> Verdict:
        tools = {t.get("name"): t for t in request.get("tools") or () if isinstance(t, dict)}
        for block in message.get("content") or ():
            if not isinstance(block, dict) or block.get("type") != "tool_use":
                continue
            tool = tools.get(block.get("name"))
            if tool is None:
                return Verdict(False, self.name, f"tool_use names an unknown tool {block.get('name')!r}")
            required = (tool.get("input_schema") or {}).get("required") or ()
            raw_input = block.get("input")
            given: Mapping[str, Any] = raw_input if isinstance(raw_input, dict) else {}
            missing = [f for f in required if f not in given]
            if missing:
                return Verdict(False, self.name, f"tool_use {block.get('name')} is missing required field(s) {', '.join(missing)}")
        return Verdict(True, self.name)


_HEDGES = ("i'm not sure", "i am not sure", "i cannot", "i can't", "unable to", "not enough information",
           "as an ai", "i don't know", "it is unclear", "cannot determine")


def answer_score(text: str) -> float:
    """A cheap prior on answer quality from its text alone: 0 (empty/hedging) to 1."""
    t = text.strip()
    if not t:
        return 0.0
    low = t.lower()
    score = 1.0
    if any(h in low for h in _HEDGES):
        score -= 0.5
    words = len(t.split())
    if words < 3:
        score -= 0.3
    if t.endswith(("...", ",", ":")):
        score -= 0.2
    return max(0.0, min(1.0, score))


class AnswerScore:
    name = "answer_score"

    def __init__(self, threshold: float = 0.6, scorer: Callable[[str], float] | None = None, **_: Any) -> None:
        self.threshold = threshold
        self.scorer = scorer or answer_score

    async def check(self, message: Mapping[str, Any], request: Mapping[str, Any]) -> Verdict:
        s = float(self.scorer(message_text(message)))
        if s < self.threshold:
            return Verdict(False, self.name, f"answer score {s:.2f} below {self.threshold:.2f}", s)
        return Verdict(True, self.name, score=s)


GRADER_PROMPT = """You grade an AI answer against a rubric. Reply with only a JSON object
{{"pass": true or false, "score": 0.0-1.0, "reason": "<one short sentence>"}}.

Rubric:
{rubric}

Request:
{request}

Answer:
{answer}"""


class LLMGrader:
    """Asks a (cheap) model to grade the answer against a rubric; the grader call goes through the upstream."""

    name = "llm_grader"

    def __init__(self, upstream: Any = None, model: str = "claude-haiku-5-5", rubric: str = "The answer is correct, "
                 "complete and directly addresses the request.", threshold: float = 0.5, **_: Any) -> None:
        if upstream is None:
            raise ConfigError("verifier llm_grader needs an upstream")
        self.upstream = upstream
        self.model = model
        self.rubric = rubric
        self.threshold = threshold

    async def check(self, message: Mapping[str, Any], request: Mapping[str, Any]) -> Verdict:
        from ..routing.base import RouteRequest
        from ..upstream.base import call_json

        prompt = GRADER_PROMPT.format(rubric=self.rubric, request=RouteRequest(dict(request)).text[:8000],
                                      answer=message_text(message)[:8000])
        reply = await call_json(self.upstream, {"model": self.model, "max_tokens": 200,
                                                "messages": [{"role": "user", "content": prompt}]})
        text = _strip_fence(message_text(reply))
        try:
            data = orjson.loads(text[text.find("{"): text.rfind("}") + 1])
            ok, score = bool(data.get("pass")), float(data.get("score", 1.0 if data.get("pass") else 0.0))
            reason = str(data.get("reason", ""))[:200]
        except (orjson.JSONDecodeError, ValueError, AttributeError, TypeError):
            return Verdict(False, self.name, "the grader's reply was not the JSON asked for", 0.0)
        if not ok or score < self.threshold:
            return Verdict(False, self.name, f"grader: {reason or 'fails the rubric'}", score)
        return Verdict(True, self.name, reason, score)


VERIFIERS: dict[str, Callable[..., Any]] = {
    "stop_reason": StopReason,
    "json_schema": JsonSchema,
    "regex": Regex,
    "tool_fields": ToolFields,
    "answer_score": AnswerScore,
    "llm_grader": LLMGrader,
}


def build_verifiers(specs: list[Any], upstream: Any = None) -> list[Any]:
    """From config: ``["stop_reason", {"type": "regex", "pattern": "^\\\\d+$"}, ...]``."""
    out = []
    for spec in specs:
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, Mapping) or spec.get("type") not in VERIFIERS:
            known = ", ".join(VERIFIERS)
            raise ConfigError(f"verifier {spec!r}: unknown type (known: {known})")
        opts = {k: v for k, v in spec.items() if k != "type"}
        if spec["type"] == "llm_grader":
            opts.setdefault("upstream", upstream)
        out.append(VERIFIERS[spec["type"]](**opts))
    return out
