"""Prompt features for the learned router (the answer features of a cascade's verifier are in
:mod:`tierwise.cascade.training`; the training matrix, :class:`SparseRows`, in :mod:`.solvers`).

No downloaded weights: hashed word unigrams/bigrams, hashed character n-grams (of the UTF-8
bytes), and dense structural signals (the heuristic router's, plus counts of numbers, options and
negations). Optionally (off by default, see ``DEFAULT_WEIGHTS``) a
hashed category token and the category crossed with the structural signals and with the words:
only for a category that live requests carry too (the task type); a spec that does not use it never
reads it, so the same prompt scores the same with or without one.

Two hashing schemes exist. ``hash: 2`` (the default since artifact version 2) tokenises the UTF-8
bytes of the (cut, lower-cased) prompt and hashes every word and bigram with one ``zlib.crc32`` call
each (a bigram is the second word's CRC seeded with the first word's), so the decide-time path
(:class:`FastScorer`, pure Python) costs a few C-level ``map`` steps per word and no numpy at all.
``hash: 1`` (artifact version 1) mixed the CRCs through a 64-bit multiply-xorshift in numpy; it is
still read, through the numpy path. Character n-grams are hashed in numpy in both schemes.

Each hashed namespace is L2-normalised on its own and then scaled by a per-namespace weight;
with sublinear term frequency ``sqrt(count)`` the squared norm of a namespace is just its token
count, which is what lets the fast path skip building the vector.
"""

from __future__ import annotations

import math
import re
import zlib
from array import array
from collections import Counter, _count_elements  # type: ignore[attr-defined]
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import and_, gt, itemgetter, mul, xor
from typing import Any, Mapping, Sequence

import numpy as np

from .base import RouteRequest
from .signals import Signals, extract
from .solvers import SparseRows

__all__ = ["CATEGORY_NAMESPACES", "CATEGORY_WEIGHTS", "FeatureSpec", "Featurizer", "FastScorer", "SparseRows", "DENSE_NAMES",
           "dense_signals", "dense_v2", "HASH_VERSION", "ascii_word_counts", "count_numbers", "count_options", "prompt_signals"]

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_P = np.uint64(1099511628211)          # FNV prime: odd, so wrapping multiplication mixes well
_MIX = np.uint64(0x9E3779B97F4A7C15)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")

DENSE_NAMES = ("log_chars", "log_words", "digits_frac", "numbers", "lines", "options", "question_marks",
               "conditional", "multi_step", "analysis", "code", "code_task", "math", "stakes", "short_output",
               "negation")
_NEGATION = re.compile(r"\b(not|except|never|least|false|incorrect)\b", re.IGNORECASE)
_NEGATION_WORDS = frozenset({b"not", b"except", b"never", b"least", b"false", b"incorrect"})
# hash-2 tokens, on the UTF-8 bytes of the lower-cased text: the same tokens as _WORD (ASCII words,
# one token per other non-space character), except that non-ASCII whitespace is a token too
# (possessive: nothing follows them, so they match what greedy ones would, with less work per token)
_WORD_B = re.compile(rb"[a-z0-9]++(?:'[a-z]++)?+|[\xc0-\xff][\x80-\xbf]*+|[^\sa-z0-9\x80-\xff]")
# counts _NUMBER's matches: each "-?D" match ends where a "D" match starting at its digit does, so the
# counts are equal, and a pattern that starts with a digit class is searched several times faster
_NUMBER_COUNT_B = re.compile(rb"\d[\d,]*(?:\.\d+)?")
_OPTION_B = re.compile(rb"^\s*[A-J][.)]\s", re.MULTILINE)
_DIGITS_B = b"0123456789"
_OPTION = re.compile(r"^\s*[A-J][.)]\s", re.MULTILINE)
_ASCII_DIGITS = "0123456789"

HASH_VERSION = 2
# hash-2 seeds (crc32 start values) per namespace; a bigram's seed is its first word's CRC ^ _K_BIGRAM
_S_WORD = 0x2F6B1A3D
_K_BIGRAM = 0x5BD1E995
_S_CAT = 0x1B873593
_K_CATDENSE = 0x68E31DA4
_K_CATWORD = 0x27D4EB2F
_DENSE_TAGS = tuple(bytes([65 + j]) for j in range(len(DENSE_NAMES)))


# Chosen by 3-fold CV inside the benchmark's training splits (MMLU, GSM8K; mixtral -> gpt-4), with
# the decide-time cost in mind. Bigrams and char 3-5-grams are supported but off: bigrams changed
# the inner-CV APGR by < 0.005 and cost ~20 us per decision; char n-grams gained ~0.01 on MMLU but
# cost several times the rest of the decision. The category namespaces (the category, category x
# structural signals, category x words) are OFF by default: a live request carries no MMLU subject,
# so a router trained with them learns from a field it never sees at decide time (train/serve
# mismatch). Turn them on (``tierwise train --category``) only when the training category is the
# task type that live requests carry (``model: "tierwise/<task>"`` or ``x-tierwise-task``).
CATEGORY_NAMESPACES = ("category", "catdense", "catword")
DEFAULT_WEIGHTS = {"word": 1.0, "bigram": 0.0, "char": 0.0, "category": 0.0, "dense": 1.0, "catdense": 0.0,
                   "catword": 0.0}
CATEGORY_WEIGHTS = {"category": 2.0, "catdense": 1.0, "catword": 1.0}  # what ``--category`` turns on


@dataclass
class FeatureSpec:
    """Everything needed to rebuild the feature map at decide time (stored in the artifact)."""

    bits: int = 16
    char_ngrams: tuple[int, ...] = (3, 4, 5)
    max_chars: int = 4000
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    hash: int = HASH_VERSION      # 1: artifact-v1 features (numpy only); 2: crc32-seeded, fast decide path

    def to_json(self) -> dict[str, Any]:
        return {"bits": self.bits, "char_ngrams": list(self.char_ngrams), "max_chars": self.max_chars,
                "weights": dict(self.weights), "hash": self.hash}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "FeatureSpec":
        h = int(d.get("hash", 1))  # artifacts written before the key existed used scheme 1
        if h not in (1, 2):
            raise ValueError(f"unknown feature hashing scheme {h}")
        return cls(bits=int(d["bits"]), char_ngrams=tuple(int(n) for n in d["char_ngrams"]),
                   max_chars=int(d["max_chars"]), weights={k: float(v) for k, v in d["weights"].items()}, hash=h)

    @property
    def uses_category(self) -> bool:
        """Whether any feature depends on the category (else the category is never read)."""
        return any(self.uses(ns) for ns in CATEGORY_NAMESPACES)

    def without_category(self) -> "FeatureSpec":
        """The same spec with every category-dependent namespace switched off."""
        return FeatureSpec(bits=self.bits, char_ngrams=self.char_ngrams, max_chars=self.max_chars,
                           weights={**self.weights, **dict.fromkeys(CATEGORY_NAMESPACES, 0.0)}, hash=self.hash)

    def uses(self, namespace: str) -> bool:
        if namespace == "char":
            return bool(self.char_ngrams) and bool(self.weights.get("char", 0.0))
        return bool(self.weights.get(namespace, 0.0))


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


def prompt_signals(text: str) -> Signals:
    """The heuristic router's signals of a bare prompt."""
    return _signals(text)


def count_numbers(text: str) -> int:
    return len(_NUMBER.findall(text))


def count_options(text: str) -> int:
    """Lines that look like answer options ("A) ...", "b. ...")."""
    return len(_OPTION.findall(text))


def _count_digits(text: str) -> int:
    if text.isascii():  # the common case: ten C-level scans instead of a generator over every character
        return sum(map(text.count, _ASCII_DIGITS))
    return sum(c.isdigit() for c in text)


def dense_signals(text: str, words: int | None = None, signals: Signals | None = None) -> np.ndarray:
    """Structural signals of a prompt as floats roughly in [0, 1] (order: DENSE_NAMES). This is
    the artifact-v1 definition, also used by the cascade verifiers; hash-2 features use :func:`dense_v2`."""
    s = signals or _signals(text)
    chars = len(text)
    nwords = words if words is not None else len(text.split())
    digits = _count_digits(text) if chars < 20000 else 0
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


def prompt_bytes(text: str, max_chars: int) -> tuple[bytes, bytes]:
    """Hash-2 inputs: the UTF-8 bytes of the first ``max_chars`` characters, as is and lower-cased."""
    cut = text[:max_chars]
    try:
        return cut.encode(), cut.lower().encode()
    except UnicodeEncodeError:  # lone surrogates (JSON allows them): keep them, deterministically
        return cut.encode("utf-8", "surrogatepass"), cut.lower().encode("utf-8", "surrogatepass")


def dense_v2(raw: bytes, n_words: int, negations: int, chars: int, signals: Signals) -> tuple[list[float], int, int]:
    """Hash-2 structural signals (order: DENSE_NAMES): ``raw`` is the cut prompt's UTF-8 bytes (see
    :func:`prompt_bytes`), ``n_words`` / ``negations`` the counts of its hash-2 tokens / of negation
    words among them, ``chars`` the whole prompt's length. Also returns the counts of numbers and of
    answer options in ``raw`` (for the reasons)."""
    s = signals
    n = len(raw)
    digits = n - len(raw.translate(None, _DIGITS_B))
    n_numbers = len(_NUMBER_COUNT_B.findall(raw)) if digits else 0
    if 10 in raw:  # b"\n" (an int: ``bytes in bytes`` first tries, and fails, to read the needle as one)
        n_options = len(_OPTION_B.findall(raw)) if 46 in raw or 41 in raw else 0  # b"." or b")"
    else:  # one line: "^" only matches at the start
        n_options = 1 if _OPTION_B.match(raw) else 0
    lines, questions, conditionals = raw.count(10), raw.count(63), s.conditionals  # b"\n", b"?"
    # (``x if x < k else k`` is ``min(x, k)`` for these ints, without a call)
    return [
        math.log1p(chars) / 10.0,
        math.log1p(n_words) / 8.0,
        digits / (n if n > 1 else 1),
        (n_numbers if n_numbers < 20 else 20) / 20.0,
        (lines if lines < 50 else 50) / 50.0,
        (n_options if n_options < 10 else 10) / 10.0,
        (questions if questions < 5 else 5) / 5.0,
        (conditionals if conditionals < 5 else 5) / 5.0,
        float(s.multi_step),
        float(s.analysis),
        float(s.code),
        float(s.code_task),
        float(s.math),
        float(s.stakes),
        float(s.short_output),
        (negations if negations < 5 else 5) / 5.0,
    ], n_numbers, n_options


class Hashed2:
    """Hash-2 word features of one prompt: per *distinct* word (and bigram) its bucket and its count.

    Sublinear term frequency is taken per distinct token before hashing (``sqrt(count)``; tokens
    that share a bucket add up), and a namespace is scaled by ``weight / sqrt(tokens)``, which is its
    L2 norm before hashing. Everything is C-level ``map`` over ``zlib.crc32`` and ``Counter``'s
    counting helper (on a plain dict: same counts and order, without ``Counter.__init__``'s checks)."""

    __slots__ = ("n", "word_keys", "word_counts", "words", "bigram_keys", "bigram_counts")

    def __init__(self, words: Sequence[bytes], mask: int, bigrams: bool = False) -> None:
        self.n = len(words)
        cnt: dict[bytes, int] = {}
        _count_elements(cnt, words)
        self.words = cnt
        crcs = list(map(zlib.crc32, cnt, repeat(_S_WORD)))
        self.word_keys = list(map(and_, crcs, repeat(mask)))
        self.word_counts = list(cnt.values())
        self.bigram_keys: list[int] = []
        self.bigram_counts: list[int] = []
        if bigrams and self.n > 1:
            H = list(map(dict(zip(cnt, crcs)).__getitem__, words))
            bc = Counter(map(zlib.crc32, words[1:], map(xor, H, repeat(_K_BIGRAM))))
            self.bigram_keys = list(map(and_, bc, repeat(mask)))
            self.bigram_counts = list(bc.values())

    def negations(self) -> int:
        return sum(map(self.words.get, _NEGATION_WORDS, repeat(0)))


# ``ascii_word_counts``: runs of token bytes and apostrophes; bytes that are tokens of their own
_RUN_TABLE = bytes(c if c in b"abcdefghijklmnopqrstuvwxyz0123456789'" else 32 for c in range(256))
_NOT_SINGLE = b"abcdefghijklmnopqrstuvwxyz0123456789' \t\n\r\x0b\x0c"
_BYTE = [bytes((i,)) for i in range(256)]
_APOS = 39  # b"'" as an int: ``int in bytes`` is a byte search, ``bytes in bytes`` first fails to read an int
WORD_CACHE = 50_000  # distinct words whose weights a FastScorer keeps


def ascii_word_counts(low: bytes) -> dict[bytes, int]:
    """The hash-2 tokens of an ASCII lower-cased prompt, counted: what counting ``_WORD_B.findall(low)``
    gives (in another order) with two ``translate`` calls and a ``split``. A run of letters, digits and
    apostrophes is one token unless it holds an apostrophe (then the regex splits that run alone: the
    pattern never joins a run with its neighbours); every other non-space byte is a token of its own."""
    runs = low.translate(_RUN_TABLE)
    cnt: dict[bytes, int] = {}
    _count_elements(cnt, runs.split())
    i = runs.find(_APOS)
    while i >= 0:  # each run that holds an apostrophe, cut out around it (a space ends every run)
        end = runs.find(32, i)
        end = len(runs) if end < 0 else end
        c = cnt.pop(runs[runs.rfind(32, 0, i) + 1:end], 0)  # 0: a repeat of a run already split
        if c:
            for t in _WORD_B.findall(runs, runs.rfind(32, 0, i) + 1, end):
                cnt[t] = cnt.get(t, 0) + c
        i = runs.find(_APOS, end)
    single = low.translate(None, _NOT_SINGLE)
    if single:  # a few distinct bytes, none of them a run's (nor "'", which only runs hold)
        for b in set(single):
            cnt[_BYTE[b]] = single.count(b)
    return cnt


def hash2_category(category: str) -> int:
    """Full 32-bit hash-2 CRC of a category (its bucket is ``crc & mask``; crossed features seed from it)."""
    return zlib.crc32(category.lower().encode("utf-8", "surrogatepass"), _S_CAT)


def hash2_catwords(words: Mapping[bytes, int], cat_crc: int, mask: int) -> list[int]:
    """Buckets of the category x word crosses, one per distinct word (in ``words``' order)."""
    return list(map(and_, map(zlib.crc32, words, repeat(cat_crc ^ _K_CATWORD)), repeat(mask)))


def hash2_catdense(cat_crc: int, mask: int) -> list[int]:
    """Buckets of the category x dense-signal crosses, one per DENSE_NAMES entry."""
    seed = cat_crc ^ _K_CATDENSE
    return [zlib.crc32(tag, seed) & mask for tag in _DENSE_TAGS]


def _char_buckets(words: Sequence[str] | Sequence[bytes], spec: "FeatureSpec") -> np.ndarray:
    joined = b" ".join(words) if words and isinstance(words[0], bytes) else " ".join(words).encode("utf-8", "replace")  # type: ignore[arg-type]
    data = np.frombuffer(joined, dtype=np.uint8).astype(np.uint64)
    return np.concatenate([_bucket(_char_hashes(data, n), 10 + n, spec.bits) for n in spec.char_ngrams])


class Featurizer:
    """Prompt (+ optional category) -> sparse vector of ``2**bits`` hashed + dense columns (numpy;
    used for training and as the reference for :class:`FastScorer`)."""

    def __init__(self, spec: FeatureSpec | None = None) -> None:
        self.spec = spec or FeatureSpec()
        self.n_hashed = 1 << self.spec.bits
        self.n_cols = self.n_hashed + len(DENSE_NAMES)

    def transform_one(self, text: str, category: str | None = None,
                      signals: Signals | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.spec.hash == 1:
            return self._transform_v1(text, category, signals)
        spec, w = self.spec, self.spec.weights
        mask = self.n_hashed - 1
        raw, low = prompt_bytes(text, spec.max_chars)
        words = _WORD_B.findall(low)
        idx: list[np.ndarray] = []
        val: list[np.ndarray] = []

        def add(ix: Sequence[int] | np.ndarray, weight: float) -> None:
            ix = np.asarray(ix, dtype=np.int64)
            if ix.size == 0 or weight == 0:
                return
            u, c = np.unique(ix, return_counts=True)
            v = np.sqrt(c.astype(np.float64))  # sublinear term frequency
            v *= weight / np.sqrt(np.dot(v, v))
            idx.append(u)
            val.append(v)

        h = Hashed2(words, mask, spec.uses("bigram"))
        for keys, counts, n, weight in ((h.word_keys, h.word_counts, h.n, w.get("word", 0.0)),
                                        (h.bigram_keys, h.bigram_counts, h.n - 1, w.get("bigram", 0.0))):
            if keys and weight:
                idx.append(np.array(keys, dtype=np.int64))
                val.append(np.sqrt(np.array(counts, dtype=np.float64)) * (weight / np.sqrt(n)))
        if spec.uses("char"):
            add(_char_buckets(words, spec), w["char"])
        dvals, _, _ = dense_v2(raw, h.n, h.negations(), len(text), signals or _signals(text))
        draw = np.array(dvals, dtype=np.float64)
        if category and spec.uses_category:
            ccrc = hash2_category(category)
            add([ccrc & mask], w.get("category", 0.0))
            if spec.uses("catdense"):
                nz = np.nonzero(draw)[0]
                idx.append(np.array(hash2_catdense(ccrc, mask), dtype=np.int64)[nz])
                val.append(draw[nz] * w["catdense"])
            if spec.uses("catword") and h.word_keys:
                idx.append(np.array(hash2_catwords(h.words, ccrc, mask), dtype=np.int64))
                val.append(np.sqrt(np.array(h.word_counts, dtype=np.float64)) * (w["catword"] / np.sqrt(h.n)))
        dense = draw * w.get("dense", 1.0)
        nz = np.nonzero(dense)[0]
        idx.append(self.n_hashed + nz)
        val.append(dense[nz])
        return _merge(idx, val)

    def _transform_v1(self, text: str, category: str | None = None,
                      signals: Signals | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Artifact-v1 features (64-bit mixed hashes in numpy), kept so version-1 artifacts still load."""
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
            add(_char_buckets(words, spec), w.get("char", 1.0))
        if category and w.get("category", 0.0):
            add(_bucket(_word_hashes([category.lower()]), 3, bits), w["category"])
        dense = dense_signals(text[: spec.max_chars * 4], len(words), signals) * w.get("dense", 1.0)
        nz = np.nonzero(dense)[0]
        idx.append(self.n_hashed + nz)
        val.append(dense[nz])
        return _merge(idx, val)

    def transform(self, texts: Sequence[str], categories: Sequence[str | None] | None = None) -> SparseRows:
        cats = categories if categories is not None else [None] * len(texts)
        return SparseRows.from_rows([self.transform_one(t, c) for t, c in zip(texts, cats)], self.n_cols)


def _merge(idx: list[np.ndarray], val: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the namespaces, summing values that hashed to the same column."""
    ix = np.concatenate(idx)
    vx = np.concatenate(val)
    if ix.size and len(idx) > 1:
        order = np.argsort(ix, kind="stable")
        ix, vx = ix[order], vx[order]
        u, start = np.unique(ix, return_index=True)
        if u.size != ix.size:
            vx = np.add.reduceat(vx, start)
            ix = u
    return ix, vx


class FastScorer:
    """Decide-time prediction for hash-2 features without numpy: the same features and weights as
    :class:`Featurizer` + ``X @ W + mu``, but the weight columns are float32 ``array.array`` s built
    once (compact: a list of float objects is several times slower, from cache misses), words and
    bigrams are hashed by C-level ``map`` over ``zlib.crc32``, and each namespace's dot product is
    ``sum(map(column.__getitem__, buckets))``. Equal to the numpy path to float rounding (tested) as
    long as ``W`` holds float32 values, which artifacts always do (see ``Artifact``)."""

    def __init__(self, spec: FeatureSpec, W: np.ndarray, mu: np.ndarray) -> None:
        if spec.hash != 2:
            raise ValueError("FastScorer needs hash-2 features")
        self.spec = spec
        self.n_hashed = 1 << spec.bits
        self.mask = self.n_hashed - 1
        w = spec.weights
        self.w_word, self.w_bigram = w.get("word", 0.0), w.get("bigram", 0.0)
        self.w_cat, self.w_catdense, self.w_catword = w.get("category", 0.0), w.get("catdense", 0.0), w.get("catword", 0.0)
        self.w_char = w.get("char", 0.0) if spec.uses("char") else 0.0
        self.uses_category = spec.uses_category
        self.cols = [array("f", np.ascontiguousarray(W[:, r], dtype=np.float32).tobytes()) for r in range(W.shape[1])]
        wd = w.get("dense", 1.0)
        nh, nd = self.n_hashed, len(DENSE_NAMES)
        self.dense_cols = [[float(x) * wd for x in W[nh:nh + nd, r]] for r in range(W.shape[1])]
        self.mu = [float(x) for x in mu]
        self.max_chars = spec.max_chars
        # no namespace reads the tokens' order: an ASCII prompt's tokens are counted without the regex
        self.plain = not self.w_bigram and not self.w_char
        # the word cache: per rung word -> weight; for two rungs one dict of complex(w0, w1)
        self._wc: list[dict[bytes, Any]] = [{}] if len(self.cols) == 2 else [{} for _ in self.cols]

    def _add(self, acc: list[float], keys: list[int], counts: list[int], n: int, scale: float) -> None:
        """``acc[r] += scale * sum_i sqrt(counts[i]) * W[keys[i], r]`` (``n`` = sum of the counts): every
        bucket once (one ``itemgetter`` call per column), then ``(sqrt(count) - 1) * W[b]`` for the few
        repeated tokens, in token order (the float operations and their order predictions rely on)."""
        cols = self.cols
        if not keys:
            return
        if len(keys) == 1:
            b = keys[0]
            for r, col in enumerate(cols):
                acc[r] += scale * col[b]
        else:
            weights = itemgetter(*keys)
            for r, col in enumerate(cols):
                acc[r] += scale * sum(weights(col))
        if len(keys) != n:
            repeated = [(scale * (math.sqrt(c) - 1.0), b)
                        for c, b in compress(zip(counts, keys), map(gt, counts, repeat(1)))]
            for r, col in enumerate(cols):
                a = acc[r]
                for f, b in repeated:
                    a += f * col[b]
                acc[r] = a

    def _words(self, acc: list[float], cnt: Mapping[bytes, int], n: int, scale: float) -> None:
        """The word namespace, as ``_add`` over ``cnt``'s buckets, with each distinct word's weight per rung
        looked up in a cache (word -> float; filled on a miss, replaced when it reaches ``WORD_CACHE``
        words): one C-level ``map`` per rung, no hashing and no float objects for known words. For two
        rungs the cache holds ``complex(w0, w1)``: one ``map`` sums both (a complex sum adds the real and
        the imaginary parts as two float sums would, in the same order)."""
        caches = self._wc
        try:
            sums = [sum(map(c.__getitem__, cnt)) for c in caches]
        except KeyError:
            caches = self._learn(cnt)
            sums = [sum(map(c.__getitem__, cnt)) for c in caches]
        if len(caches) == 1 and len(acc) == 2:  # the complex cache
            z = sums[0]
            acc[0] += scale * z.real
            acc[1] += scale * z.imag
            if len(cnt) != n:
                c0 = caches[0]
                a0, a1 = acc
                for w, k in cnt.items():
                    if k > 1:
                        f = scale * (math.sqrt(k) - 1.0)
                        zw = c0[w]
                        a0 += f * zw.real
                        a1 += f * zw.imag
                acc[0], acc[1] = a0, a1
            return
        for r, s in enumerate(sums):
            acc[r] += scale * s
        if len(cnt) != n:
            repeated = [(scale * (math.sqrt(c) - 1.0), w) for w, c in cnt.items() if c > 1]
            for r, c in enumerate(caches):
                a = acc[r]
                for f, w in repeated:
                    a += f * c[w]
                acc[r] = a

    def _learn(self, cnt: Mapping[bytes, int]) -> list[dict[bytes, Any]]:
        """Caches that hold every word of ``cnt`` (new dicts when the current ones would grow past
        ``WORD_CACHE``: a decide that still reads the old ones keeps them whole)."""
        caches = self._wc
        if len(caches[0]) + len(cnt) > WORD_CACHE:
            caches = self._wc = [{} for _ in caches]
        first, mask, cols = caches[0], self.mask, self.cols
        pair = len(caches) == 1 and len(cols) == 2
        for w in cnt:
            if w not in first:
                b = zlib.crc32(w, _S_WORD) & mask
                if pair:
                    first[w] = complex(cols[0][b], cols[1][b])
                else:
                    for c, col in zip(caches, cols):
                        c[w] = col[b]
        return caches

    def predict(self, text: str, category: str | None, signals: Signals) -> tuple[list[float], int, int]:
        """(clipped predicted score per rung, count of numbers, count of options) for one prompt."""
        cut = text[:self.max_chars]
        h: Hashed2 | None = None
        if self.plain and cut.isascii():  # ASCII: bytes.lower() is str.lower(); tokens counted without a regex
            raw = cut.encode()
            low = raw.lower()
            cnt = ascii_word_counts(low)
            n = sum(cnt.values())
        else:
            raw, low = prompt_bytes(text, self.max_chars)
            words = _WORD_B.findall(low)
            h = Hashed2(words, self.mask, bool(self.w_bigram))
            cnt, n = h.words, h.n
        acc = list(self.mu)
        if n and self.w_word:
            self._words(acc, cnt, n, self.w_word / math.sqrt(n))
        if h is not None and h.bigram_keys:
            self._add(acc, h.bigram_keys, h.bigram_counts, n - 1, self.w_bigram / math.sqrt(n - 1))
        if self.w_char:
            ch = _char_buckets(words, self.spec).tolist()
            if ch:
                cc = Counter(ch)
                self._add(acc, list(cc), list(cc.values()), len(ch), self.w_char / math.sqrt(len(ch)))
        dense, n_numbers, n_options = dense_v2(raw, n, sum(map(cnt.get, _NEGATION_WORDS, repeat(0))), len(text), signals)
        for r, dcol in enumerate(self.dense_cols):
            acc[r] += sum(map(mul, dense, dcol))
        if category and self.uses_category:
            self._category(acc, category, dense, cnt, n)
        return [0.0 if a < 0.0 else 1.0 if a > 1.0 else a for a in acc], n_numbers, n_options

    def _category(self, acc: list[float], category: str, dense: list[float], cnt: Mapping[bytes, int], n: int) -> None:
        ccrc = hash2_category(category)
        if self.w_cat:
            b = ccrc & self.mask
            for r, col in enumerate(self.cols):
                acc[r] += self.w_cat * col[b]
        if self.w_catdense:
            keys = hash2_catdense(ccrc, self.mask)
            wc = self.w_catdense
            for r, col in enumerate(self.cols):
                acc[r] += wc * sum(map(mul, dense, map(col.__getitem__, keys)))
        if self.w_catword and n:
            self._add(acc, hash2_catwords(cnt, ccrc, self.mask), list(cnt.values()), n, self.w_catword / math.sqrt(n))
