"""Prompt features for the learned router, and answer features for a cascade's verifier.

No downloaded weights: hashed word unigrams/bigrams, hashed character n-grams (of the
UTF-8 bytes), a hashed category token (the subject / task type, known before routing), and
a few dense structural signals (the same regular expressions as the heuristic router).

Hashing is vectorised in numpy (a polynomial hash with wrapping uint64 arithmetic), so a
prompt of a few thousand characters is featurised in well under a millisecond. Each hashed
namespace is L2-normalised on its own and then scaled by a per-namespace weight.

:func:`answer_features` describes a recorded/cheap answer (is there a well-formed final
answer, do its ``<<a*b=c>>`` calculations check out, does it hedge...). It is only ever used
*after* the cheap model has answered (cascade verification), never as a routing input.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .base import RouteRequest
from .signals import Signals, extract

__all__ = ["FeatureSpec", "Featurizer", "SparseRows", "DENSE_NAMES", "ANSWER_NAMES", "answer_features",
           "dense_signals", "describe_prompt"]

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_P = np.uint64(1099511628211)          # FNV prime: odd, so wrapping multiplication mixes well
_MIX = np.uint64(0x9E3779B97F4A7C15)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")

DENSE_NAMES = ("log_chars", "log_words", "digits_frac", "numbers", "lines", "options", "question_marks",
               "conditional", "multi_step", "analysis", "code", "code_task", "math", "stakes", "short_output",
               "negation")
_NEGATION = re.compile(r"\b(not|except|never|least|false|incorrect)\b", re.IGNORECASE)
_OPTION = re.compile(r"^\s*[A-J][.)]\s", re.MULTILINE)


@dataclass
class FeatureSpec:
    """Everything needed to rebuild the feature map at decide time (stored in the artifact)."""

    bits: int = 16
    char_ngrams: tuple[int, ...] = (3, 4, 5)
    max_chars: int = 4000
    weights: dict[str, float] = field(default_factory=lambda: {"word": 1.0, "bigram": 0.7, "char": 1.0, "category": 2.0, "dense": 1.0})

    def to_json(self) -> dict[str, Any]:
        return {"bits": self.bits, "char_ngrams": list(self.char_ngrams), "max_chars": self.max_chars,
                "weights": dict(self.weights)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "FeatureSpec":
        return cls(bits=int(d["bits"]), char_ngrams=tuple(int(n) for n in d["char_ngrams"]),
                   max_chars=int(d["max_chars"]), weights={k: float(v) for k, v in d["weights"].items()})


def _bucket(h: np.ndarray, salt: int, bits: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = (h ^ np.uint64(salt)) * _MIX
        x ^= x >> np.uint64(31)
        x *= _P
    return (x >> np.uint64(64 - bits)).astype(np.int64)


def _word_hashes(words: Sequence[str]) -> np.ndarray:
    return np.fromiter((zlib.crc32(w.encode()) for w in words), dtype=np.uint64, count=len(words))


def _char_hashes(data: np.ndarray, n: int) -> np.ndarray:
    m = data.shape[0] - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = np.full(m, n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * _P + data[j:j + m]
    return h


def _signals(text: str) -> Signals:
    return extract(RouteRequest.from_prompt(text))


def dense_signals(text: str, words: int | None = None, signals: Signals | None = None) -> np.ndarray:
    """Structural signals of a prompt as floats roughly in [0, 1] (order: DENSE_NAMES)."""
    s = signals or _signals(text)
    chars = len(text)
    nwords = words if words is not None else len(text.split())
    digits = sum(c.isdigit() for c in text) if chars < 20000 else 0
    return np.array([
        math.log1p(chars) / 10.0,
        math.log1p(nwords) / 8.0,
        digits / max(chars, 1),
        min(len(_NUMBER.findall(text)), 20) / 20.0,
        min(text.count("\n"), 50) / 50.0,
        min(len(_OPTION.findall(text)), 10) / 10.0,
        min(text.count("?"), 5) / 5.0,
        min(s.conditionals, 5) / 5.0,
        float(s.multi_step),
        float(s.analysis),
        float(s.code),
        float(s.code_task),
        float(s.math),
        float(s.stakes),
        float(s.short_output),
        min(len(_NEGATION.findall(text)), 5) / 5.0,
    ], dtype=np.float64)


def describe_prompt(text: str, signals: Signals | None = None) -> list[str]:
    """A few human-readable phrases about a prompt (for Decision.reasons)."""
    s = signals or _signals(text)
    out: list[str] = []
    n_numbers = len(_NUMBER.findall(text))
    math_hit = s.math or n_numbers >= 3
    if math_hit and (n_numbers >= 3 or s.multi_step):
        out.append("multi-step math word problem" if len(text) > 150 else "arithmetic question")
    elif math_hit:
        out.append("math or quantities")
    if len(_OPTION.findall(text)) >= 2:
        out.append("multiple-choice question")
    if s.code or s.code_task:
        out.append("code")
    if s.analysis:
        out.append("comparison or analysis")
    if s.stakes:
        out.append("high-stakes domain")
    if s.short_output:
        out.append("short, schema-bound output")
    if len(text) > 8000:
        out.append(f"long prompt ({(len(text) + 3) // 4:,} tokens)")
    return out


class SparseRows:
    """A minimal CSR matrix (rows = prompts) with the two products ridge regression needs."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_cols: int) -> None:
        self.indptr, self.indices, self.data, self.n_cols = indptr, indices, data, n_cols
        self.n_rows = len(indptr) - 1
        self._row_of = np.repeat(np.arange(self.n_rows), np.diff(indptr))

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[np.ndarray, np.ndarray]], n_cols: int) -> "SparseRows":
        lens = np.array([len(i) for i, _ in rows], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        indices = np.concatenate([i for i, _ in rows]) if rows else np.zeros(0, np.int64)
        data = np.concatenate([v for _, v in rows]) if rows else np.zeros(0)
        return cls(indptr, indices.astype(np.int64), data.astype(np.float64), n_cols)

    def subset(self, rows: np.ndarray) -> "SparseRows":
        return SparseRows.from_rows([(self.indices[self.indptr[r]:self.indptr[r + 1]],
                                      self.data[self.indptr[r]:self.indptr[r + 1]]) for r in rows], self.n_cols)

    def dot(self, w: np.ndarray) -> np.ndarray:
        """X @ w for w of shape (n_cols,) or (n_cols, k)."""
        if w.ndim == 1:
            return np.bincount(self._row_of, weights=self.data * w[self.indices], minlength=self.n_rows)
        return np.stack([np.bincount(self._row_of, weights=self.data * w[self.indices, j], minlength=self.n_rows)
                         for j in range(w.shape[1])], axis=1)

    def tdot(self, u: np.ndarray) -> np.ndarray:
        """X.T @ u for u of shape (n_rows,) or (n_rows, k)."""
        if u.ndim == 1:
            return np.bincount(self.indices, weights=self.data * u[self._row_of], minlength=self.n_cols)
        return np.stack([np.bincount(self.indices, weights=self.data * u[self._row_of, j], minlength=self.n_cols)
                         for j in range(u.shape[1])], axis=1)


class Featurizer:
    """Prompt (+ optional category) -> sparse vector of ``2**bits`` hashed + dense columns."""

    def __init__(self, spec: FeatureSpec | None = None) -> None:
        self.spec = spec or FeatureSpec()
        self.n_hashed = 1 << self.spec.bits
        self.n_cols = self.n_hashed + len(DENSE_NAMES)

    def transform_one(self, text: str, category: str | None = None,
                      signals: Signals | None = None) -> tuple[np.ndarray, np.ndarray]:
        spec, bits, w = self.spec, self.spec.bits, self.spec.weights
        low = text[: spec.max_chars].lower()
        words = _WORD.findall(low)
        idx: list[np.ndarray] = []
        val: list[np.ndarray] = []

        def add(ix: np.ndarray, weight: float) -> None:
            if ix.size == 0 or weight == 0:
                return
            u, c = np.unique(ix, return_counts=True)
            v = np.sqrt(c.astype(np.float64))  # sublinear term frequency
            v *= weight / np.sqrt(np.dot(v, v))
            idx.append(u)
            val.append(v)

        wh = _word_hashes(words)
        add(_bucket(wh, 1, bits), w.get("word", 1.0))
        if wh.size > 1:
            with np.errstate(over="ignore"):
                add(_bucket(wh[:-1] * _P + wh[1:], 2, bits), w.get("bigram", 0.0))
        if spec.char_ngrams and w.get("char", 0.0):
            data = np.frombuffer(" ".join(words).encode("utf-8", "replace"), dtype=np.uint8).astype(np.uint64)
            add(np.concatenate([_bucket(_char_hashes(data, n), 10 + n, bits) for n in spec.char_ngrams]),
                w.get("char", 1.0))
        if category:
            add(_bucket(_word_hashes([category.lower()]), 3, bits), w.get("category", 0.0))
        dense = dense_signals(text[: spec.max_chars * 4], len(words), signals) * w.get("dense", 1.0)
        nz = np.nonzero(dense)[0]
        idx.append(self.n_hashed + nz)
        val.append(dense[nz])
        ix = np.concatenate(idx)
        vx = np.concatenate(val)
        if ix.size and len(idx) > 1:  # merge hash collisions across namespaces
            order = np.argsort(ix, kind="stable")
            ix, vx = ix[order], vx[order]
            u, start = np.unique(ix, return_index=True)
            if u.size != ix.size:
                vx = np.add.reduceat(vx, start)
                ix = u
        return ix, vx

    def transform(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> SparseRows:
        cats = categories if categories is not None else [None] * len(texts)
        return SparseRows.from_rows([self.transform_one(t, c) for t, c in zip(texts, cats)], self.n_cols)


# ------------------------------------------------------------------ answer (verifier) features
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
