"""Training side of cascades: the features of a cheap rung's answer and the verifier fitted on them.

A cascade calls the cheapest rung first and asks a verifier whether its answer is good enough
(else it escalates). The verifier is a logistic regression on :func:`answer_features` (is there a
well-formed final answer, do its ``<<a*b=c>>`` calculations check out, does it hedge...), the
checks of its written-out arithmetic (:func:`check_features`) and the prompt's structural signals
(:func:`tierwise.routing.features.dense_signals`), fitted by :func:`fit_verifier` on recorded outcomes and stored in the learned router's artifact
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

__all__ = ["ANSWER_NAMES", "CHECK_NAMES", "VERIFIER_NAMES", "answer_features", "check_features", "verifier_features",
           "fit_verifier"]

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


# arithmetic written out in the text ("20 - 12 - 4 = 4", outside GSM8K's <<a*b=c>> annotations):
# operands and operators, "=", a number
_PLAIN_CALC = re.compile(r"((?:\(?\s*\$?-?\d[\d,]*(?:\.\d+)?\s*%?\s*\)?\s*[-+*/×x]\s*)+"
                         r"\(?\s*\$?-?\d[\d,]*(?:\.\d+)?\s*\)?)\s*=\s*\$?\s*(-?[\d,]*\.?\d+)")
_ANNOTATION = re.compile(r"<<[^<>]*>>")
_APPROX = re.compile(r"≈|\bround(?:ed|ing)?\b|\bapprox", re.IGNORECASE)
CHECK_NAMES = ("plain_calc_count", "plain_calc_errors", "plain_calc_error_any", "approximation", "negative_final")


def check_features(answer: str | None) -> np.ndarray:
    """Checks of the answer's written-out arithmetic (order: CHECK_NAMES): how many ``a op b = c``
    steps outside the ``<<...>>`` annotations, how many do not check out, rounding or approximation
    markers, a negative final answer."""
    a = answer or ""
    body = _ANNOTATION.sub("", a)
    n = bad = 0
    for expr, res in _PLAIN_CALC.findall(body):
        got, want = _eval_expr(expr.replace("$", "").replace("%", "")), _to_float(res)
        if got is None or want is None:
            continue
        n += 1
        if abs(got - want) > 1e-6 * max(1.0, abs(want)) + 0.01:  # a cent of rounding is not an error
            bad += 1
    finals = _FINAL.findall(a)
    final = _to_float(finals[-1]) if finals else None
    return np.array([min(n, 10) / 10.0, min(bad, 3) / 3.0, float(bad > 0), min(len(_APPROX.findall(a)), 3) / 3.0,
                     float(final is not None and final < 0)], dtype=np.float64)


# the answer's features, the prompt's signals, then the written-out checks (appended last: a verifier
# fitted before they existed reads the first len(w) of these, which are what it was fitted on)
VERIFIER_NAMES = ANSWER_NAMES + DENSE_NAMES + CHECK_NAMES


def verifier_features(answer: str | None, prompt: str, n: int | None = None) -> np.ndarray:
    """The verifier's inputs (order: VERIFIER_NAMES; the first ``n`` of them when given)."""
    parts = [answer_features(answer, prompt), dense_signals(prompt)]
    if n is None or n > len(ANSWER_NAMES) + len(DENSE_NAMES):
        parts.append(check_features(answer))
    x = np.concatenate(parts)
    return x if n is None else x[:n]


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
