"""Training side of cascades: the features of a cheap rung's answer and the verifier fitted on them.

A cascade calls the cheapest rung first and asks a verifier whether its answer is good enough
(else it escalates). The verifier is a logistic regression on :func:`answer_features` (is there a
well-formed final answer, do its ``<<a*b=c>>`` calculations check out, does it hedge...) and the
prompt's structural signals (:func:`tierwise.routing.features.dense_signals`), fitted by
:func:`fit_verifier` on recorded outcomes and stored in the learned router's artifact
(:class:`tierwise.routing.learned.Verifier` evaluates it at run time). The answer features are only
ever read *after* the cheap model has answered, never as a routing input.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..routing.features import DENSE_NAMES, dense_signals
from ..routing.solvers import logistic_fit

if TYPE_CHECKING:
    from ..outcomes import Record
    from ..routing.learned import Verifier

__all__ = ["ANSWER_NAMES", "VERIFIER_NAMES", "answer_features", "verifier_features", "fit_verifier"]

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")  # a number, as :mod:`tierwise.routing.features` counts them
ANSWER_NAMES = ("has_final", "final_is_number", "final_matches_last_calc", "calc_count", "calc_errors",
                "calc_error_any", "log_len", "hedge", "question_numbers_used", "answer_numbers", "repeats",
                "empty", "final_in_body", "multiple_finals", "long_final", "decimal_final")
_FINAL = re.compile(r"####\s*\$?\s*(-?[\d,]*\.?\d+)")
_FINAL_ANY = re.compile(r"(?:####|the answer is|final answer:?)\s*([^\n]*)", re.IGNORECASE)
_CALC = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
_HEDGE = re.compile(r"\b(approximately|assum\w+|not sure|unclear|cannot be determined|it seems|might|perhaps|"
                    r"however|wait|mistake|let me re|actually|error)\b", re.IGNORECASE)
_SAFE_EXPR = re.compile(r"^[\d\s.+\-*/()%]+$")


def _to_float(s: str) -> float | None:
    try:
        return float(s.replace(",", "").replace("$", "").strip())
    except ValueError:
        return None


def _eval_expr(expr: str) -> float | None:
    expr = expr.replace(",", "").replace("x", "*").replace("×", "*")
    if not _SAFE_EXPR.match(expr) or "**" in expr or len(expr) > 80:
        return None
    try:
        return float(eval(expr, {"__builtins__": {}}, {}))  # noqa: S307 - digits and operators only
    except Exception:  # noqa: BLE001
        return None


def answer_features(answer: str | None, prompt: str = "") -> np.ndarray:
    """Verifier features of a cheap model's answer (order: ANSWER_NAMES)."""
    a = answer or ""
    finals = _FINAL.findall(a)
    final = _to_float(finals[-1]) if finals else None
    if final is None:
        m = _FINAL_ANY.findall(a)
        if m:
            nums = _NUMBER.findall(m[-1])
            final = _to_float(nums[0]) if nums else None
    calcs = _CALC.findall(a)
    errors = 0
    last_calc = None
    for expr, res in calcs:
        got, want = _eval_expr(expr), _to_float(res)
        if want is not None:
            last_calc = want
        if got is not None and want is not None and abs(got - want) > 1e-6 * max(1.0, abs(want)) + 1e-9:
            errors += 1
    body = a.split("####")[0]
    body_nums = {_to_float(n) for n in _NUMBER.findall(body)}
    q_nums = {_to_float(n) for n in _NUMBER.findall(prompt)} - {None}
    a_nums = {_to_float(n) for n in _NUMBER.findall(a)} - {None}
    used = len(q_nums & a_nums) / len(q_nums) if q_nums else 1.0
    lines = [ln.strip() for ln in a.splitlines() if ln.strip()]
    repeats = 1.0 - len(set(lines)) / len(lines) if lines else 0.0
    return np.array([
        float(bool(finals)),
        float(final is not None),
        float(final is not None and last_calc is not None and abs(final - last_calc) < 1e-6),
        min(len(calcs), 10) / 10.0,
        min(errors, 3) / 3.0,
        float(errors > 0),
        math.log1p(len(a)) / 8.0,
        min(len(_HEDGE.findall(a)), 3) / 3.0,
        used,
        min(len(a_nums), 30) / 30.0,
        repeats,
        float(not a.strip()),
        float(final is not None and final in body_nums),
        float(len(finals) > 1),
        float(final is not None and abs(final) >= 1e6),
        float(final is not None and final != int(final)),
    ], dtype=np.float64)


VERIFIER_NAMES = ANSWER_NAMES + DENSE_NAMES


def verifier_features(answer: str | None, prompt: str) -> np.ndarray:
    """The verifier's inputs (order: VERIFIER_NAMES): the answer's features, then the prompt's signals."""
    return np.concatenate([answer_features(answer, prompt), dense_signals(prompt)])


def fit_verifier(records: Sequence["Record"], rungs: Sequence[Sequence[str]], rung: int = 0,
                 lam: float = 1.0) -> "Verifier | None":
    """Train on records whose rung-``rung`` outcome has a response; target = that answer scored at
    least as well as the strongest rung's (i.e. escalating would not have helped)."""
    from ..routing.learned import Verifier
    from ..routing.training import rung_outcomes

    X, y = [], []
    for r in records:
        models = rung_outcomes(r, rungs)
        if models is None:
            continue
        o = r.outcomes[models[rung]]
        if o.response is None:
            continue
        X.append(verifier_features(o.response, r.prompt))
        y.append(1.0 if o.score >= r.outcomes[models[-1]].score - 1e-9 else 0.0)
    if len(y) < 20 or min(sum(y), len(y) - sum(y)) < 3:
        return None
    w, b = logistic_fit(np.array(X), np.array(y), lam=lam)
    return Verifier(rung=rung, model=rungs[rung][0], w=w, b=b)
