"""Grading a live/shadow pair blind: a task type's registered checks, else the judge.

Checks (``[shadow.checks] <task> = [...]``, the ``evaluation/graders.py`` kinds ``match`` with a
``value``, ``regex``, ``json_schema``, ``length``) need no model. Otherwise the existing judge grades
both answers in one call (``evaluation/judge.py``: anonymised, order shuffled per pair, the rubric of
``[shadow.rubrics] <task>`` or a general one), cached by answer hash in the judgement cache
(``eval_judgements``, run id ``shadow``): the same answer to the same input is never judged twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..cost import Usage, price
from ..errors import ConfigError
from ..evaluation.graders import EvalItem, Grade, _check_spec, grade_checks, normalize

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ..config import Settings
    from ..upstream.base import Upstream

__all__ = ["PairGrader", "PairVerdict", "DEFAULT_RUBRIC", "compile_checks"]

DEFAULT_RUBRIC = ("The answer does what the task input asks, correctly and completely, in the format it asks for; "
                  "no invented facts. A terse answer that is right passes.")
RUN_ID = "shadow"


@dataclass(slots=True)
class PairVerdict:
    status: str                     # graded | ungraded
    grader: str
    live_passed: bool | None = None
    live_score: float | None = None
    shadow_passed: bool | None = None
    shadow_score: float | None = None
    cost_nanos: int = 0
    error: str | None = None


def compile_checks(conf: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """[shadow.checks] compiled. Besides the graders.py kinds: ``labels`` (``values``: the answer is exactly one
    of them, case and spaces aside) and ``agree`` (the cheaper tier's answer equals the stronger tier's,
    normalised: the stronger answer is the reference, as for labels with no reference answer)."""
    import re

    out = {}
    for task, checks in (conf or {}).items():
        compiled = []
        for i, c in enumerate(checks):
            where = f"shadow.checks.{task}.{i}"
            if isinstance(c, dict) and c.get("type") == "agree":
                compiled.append({"type": "agree"})
                continue
            if isinstance(c, dict) and c.get("type") == "labels":
                values = c.get("values")
                if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
                    raise ConfigError(f"{where}: a labels check needs \"values\", a list of the allowed labels")
                c = {"type": "regex", "pattern": r"^\s*(?:" + "|".join(re.escape(v) for v in values) + r")\s*\.?\s*$",
                     "flags": "i"}
            spec = _check_spec(c, where)
            if spec["type"] == "match" and spec.get("value") is None:
                raise ConfigError(f"shadow.checks.{task}.{i}: a match check needs \"value\" (live pairs have no reference answer)")
            if spec["type"] in ("judge", "python"):
                raise ConfigError(f"shadow.checks.{task}.{i}: use match, regex, json_schema or length")
            compiled.append(spec)
        out[task] = compiled
    return out


class PairGrader:
    def __init__(self, settings: "Settings", upstream: "Upstream", engine: "sa.Engine") -> None:
        from ..evaluation.runner import make_judge
        from ..evaluation.store import EvalStore

        self.settings = settings
        self.checks = compile_checks(settings.raw["shadow"]["checks"])
        self.rubrics = dict(settings.raw["shadow"]["rubrics"])
        self.judge = make_judge(settings, upstream)
        self.judge_model = getattr(self.judge, "model", None)
        self.store = EvalStore(engine)

    def uses_judge(self, kind: str) -> bool:
        return kind not in self.checks

    def estimate_nanos(self, kind: str, prompt_bytes: int, answer_tokens: int) -> int:
        """An upper bound of grading ``kind``'s pair (0 for checks and the offline judge)."""
        if not self.uses_judge(kind) or not self.judge_model:
            return 0
        usage = Usage(input_tokens=prompt_bytes // 3 + answer_tokens + 600, output_tokens=200 + 80 * 2)
        return price(self.settings.catalog, self.judge_model, usage, day=None) or 0

    async def grade(self, kind: str, prompt: str, params: Mapping[str, Any], live: str, shadow: str, *,
                    seed: str, live_is_cheap: bool = False) -> PairVerdict:
        if kind in self.checks:
            checks = self.checks[kind]
            local = [c for c in checks if c["type"] != "agree"]
            item = EvalItem(id=seed, task=kind, prompt=prompt, messages=list(params.get("messages") or ()), checks=local)
            lg, sg = grade_checks(live, item), grade_checks(shadow, item)
            if len(local) < len(checks):  # agree: the cheaper answer is graded against the stronger one
                same = normalize(live) == normalize(shadow)
                g = Grade("agree", same, 1.0 if same else 0.0, "same answer as the stronger tier" if same else
                          "differs from the stronger tier's answer")
                (lg if live_is_cheap else sg).append(g)
            return PairVerdict("graded", "checks", *_combine(lg), *_combine(sg))
        return await self._judged(kind, prompt, params, live, shadow, seed)

    async def _judged(self, kind: str, prompt: str, params: Mapping[str, Any], live: str, shadow: str,
                      seed: str) -> PairVerdict:
        from ..evaluation.judge import answer_hash, judge_identity

        rubric = self.rubrics.get(kind, DEFAULT_RUBRIC)
        item = EvalItem(id=seed, task=kind, prompt=prompt, messages=list(params.get("messages") or ()), rubric=rubric,
                        checks=[{"type": "judge", "rubric": rubric}])
        who, rhash = judge_identity(self.judge, item)
        hashes = {"live": answer_hash(live), "shadow": answer_hash(shadow)}
        item_id = f"shadow:{kind}"[:128]
        cached = await asyncio.to_thread(self.store.judgements, RUN_ID, item_id, who, rhash)
        fresh = {h: text for h, text in ((hashes["live"], live), (hashes["shadow"], shadow)) if h not in cached}
        cost = 0
        if fresh:
            res = await self.judge.judge(item, fresh, seed=seed)  # keyed by hash: the judge never learns the tier
            if res.usage is not None and res.model:
                cost = price(self.settings.catalog, res.model, res.usage, day=None) or 0
            new = {h: g.to_json() for h, g in res.grades.items() if g is not None}
            await asyncio.to_thread(self.store.save_judgements, RUN_ID, item_id, who, rhash, new, shown=list(res.order))
            cached.update(new)
        lg, sg = cached.get(hashes["live"]), cached.get(hashes["shadow"])
        if lg is None or sg is None:
            return PairVerdict("ungraded", who, cost_nanos=cost, error="the judge gave no usable score")
        return PairVerdict("graded", who, bool(lg["passed"]), float(lg["score"]), bool(sg["passed"]), float(sg["score"]),
                           cost_nanos=cost)


def _combine(grades: list[Grade]) -> tuple[bool, float]:
    if not grades:
        return True, 1.0
    return all(g.passed for g in grades), sum(g.score for g in grades) / len(grades)
