"""Recorded outcomes: which model scored what, at what token cost, on which prompt.

One JSON object per line (the router-benchmark format)::

    {"id": "<dataset>-<id>", "dataset": "<dataset>", "category": "<subject or null>",
     "prompt": "<user prompt text>",
     "outcomes": {"<model>": {"score": 0.0-1.0, "input_tokens": 12, "output_tokens": 34,
                              "tokens_estimated": true, "response": "<answer text, optional>"}}}

Prices come as ``{model: {"input_per_mtok": x, "output_per_mtok": y, ...}}`` (USD per million
tokens, the ``prices.json`` format). Nothing here depends on a particular dataset, ladder or
price list. ``tierwise eval`` writes this format with :class:`OutcomeWriter`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

from .errors import ConfigError

__all__ = [
    "Outcome",
    "Record",
    "OutcomeError",
    "parse_record",
    "iter_outcomes",
    "read_outcomes",
    "load_prices",
    "outcome_cost",
    "OutcomeWriter",
    "write_outcomes",
    "records_hash",
    "models_in",
    "with_ladder",
    "fold_of",
]


class OutcomeError(ConfigError):
    """An outcomes or prices file that does not follow the format (with file:line)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    score: float
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool = True
    response: str | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"score": self.score, "input_tokens": self.input_tokens,
                             "output_tokens": self.output_tokens, "tokens_estimated": self.tokens_estimated}
        if self.response is not None:
            d["response"] = self.response
        return d


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    prompt: str
    outcomes: dict[str, Outcome]
    dataset: str | None = None
    category: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def score(self, model: str) -> float:
        return self.outcomes[model].score

    def has(self, models: Iterable[str]) -> bool:
        return all(m in self.outcomes for m in models)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "dataset": self.dataset, "category": self.category, "prompt": self.prompt}
        d.update(self.extra)
        d["outcomes"] = {m: o.to_json() for m, o in self.outcomes.items()}
        return d


def _num(value: Any, where: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OutcomeError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise OutcomeError(f"{where}: expected a finite number, got {value!r}")
    if integer:
        if value < 0 or int(value) != value:
            raise OutcomeError(f"{where}: expected a whole number >= 0, got {value!r}")
        return int(value)
    return float(value)


def parse_record(data: Any, where: str = "record", *, require_outcomes: bool = True) -> Record:
    """Validate one decoded JSON object and turn it into a :class:`Record`."""
    if not isinstance(data, dict):
        raise OutcomeError(f"{where}: expected a JSON object, got {type(data).__name__}")
    rid = data.get("id")
    if isinstance(rid, int) and not isinstance(rid, bool):
        rid = str(rid)
    if not isinstance(rid, str) or not rid:
        raise OutcomeError(f"{where}: 'id' must be a non-empty string")
    prompt = data.get("prompt")
    if not isinstance(prompt, str):
        raise OutcomeError(f"{where} (id {rid}): 'prompt' must be a string")
    raw = data.get("outcomes")
    outcomes: dict[str, Outcome] = {}
    if raw is None and not require_outcomes:
        raw = {}
    if not isinstance(raw, dict):
        raise OutcomeError(f"{where} (id {rid}): 'outcomes' must be an object of model -> outcome")
    for model, o in raw.items():
        w = f"{where} (id {rid}) outcomes.{model}"
        if not isinstance(o, dict):
            raise OutcomeError(f"{w}: expected an object")
        if "score" not in o:
            raise OutcomeError(f"{w}: missing 'score'")
        score = _num(o["score"], f"{w}.score")
        if not 0.0 <= score <= 1.0:
            raise OutcomeError(f"{w}.score: {score} is outside [0, 1]")
        response = o.get("response")
        if response is not None and not isinstance(response, str):
            raise OutcomeError(f"{w}.response: expected a string")
        outcomes[model] = Outcome(
            score=score,
            input_tokens=int(_num(o.get("input_tokens", 0), f"{w}.input_tokens", integer=True)),
            output_tokens=int(_num(o.get("output_tokens", 0), f"{w}.output_tokens", integer=True)),
            tokens_estimated=bool(o.get("tokens_estimated", True)),
            response=response,
        )
    if require_outcomes and len(outcomes) < 1:
        raise OutcomeError(f"{where} (id {rid}): no outcomes")
    category = data.get("category")
    dataset = data.get("dataset")
    extra = {k: v for k, v in data.items() if k not in ("id", "prompt", "outcomes", "category", "dataset")}
    return Record(id=rid, prompt=prompt, outcomes=outcomes,
                  dataset=dataset if isinstance(dataset, str) else None,
                  category=category if isinstance(category, str) else None, extra=extra)


def _open(path: str | os.PathLike[str]) -> IO[str]:
    p = Path(path)
    if str(path) == "-":
        import sys

        return sys.stdin
    if not p.exists():
        raise OutcomeError(f"{p}: file not found")
    return p.open("r", encoding="utf-8")


def iter_outcomes(path: str | os.PathLike[str], *, require_outcomes: bool = True) -> Iterator[Record]:
    """Records of one JSONL file, validated line by line (blank lines skipped)."""
    fh = _open(path)
    try:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise OutcomeError(f"{path}:{n}: not valid JSON: {exc.msg}") from None
            yield parse_record(data, f"{path}:{n}", require_outcomes=require_outcomes)
    finally:
        if fh is not __import__("sys").stdin:
            fh.close()


def read_outcomes(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                  require_outcomes: bool = True, unique: bool = True) -> list[Record]:
    """All records of one or several files. Duplicate ids across files are an error when ``unique``."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Record] = []
    seen: dict[str, str] = {}
    for p in paths:
        for rec in iter_outcomes(p, require_outcomes=require_outcomes):
            if unique:
                if rec.id in seen:
                    raise OutcomeError(f"{p}: duplicate id {rec.id!r} (first in {seen[rec.id]})")
                seen[rec.id] = str(p)
            out.append(rec)
    return out


def load_prices(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """A prices.json (path or decoded mapping): ``{model: {input_per_mtok, output_per_mtok}}``."""
    if isinstance(source, Mapping):
        data: Any = source
        where = "prices"
    else:
        where = str(source)
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OutcomeError(f"{where}: file not found") from None
        except json.JSONDecodeError as exc:
            raise OutcomeError(f"{where}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, Mapping):
        raise OutcomeError(f"{where}: expected an object of model -> prices")
    prices: dict[str, dict[str, float]] = {}
    for model, p in data.items():
        if not isinstance(p, Mapping):
            raise OutcomeError(f"{where}.{model}: expected an object")
        try:
            pin = _num(p["input_per_mtok"], f"{where}.{model}.input_per_mtok")
            pout = _num(p["output_per_mtok"], f"{where}.{model}.output_per_mtok")
        except KeyError as exc:
            raise OutcomeError(f"{where}.{model}: missing {exc.args[0]!r}") from None
        if pin < 0 or pout < 0:
            raise OutcomeError(f"{where}.{model}: a price cannot be negative")
        prices[str(model)] = {"input_per_mtok": pin, "output_per_mtok": pout}
    return prices


def outcome_cost(outcome: Outcome, model: str, prices: Mapping[str, Mapping[str, float]]) -> float:
    """USD cost: ``input_tokens * input_per_mtok / 1e6 + output_tokens * output_per_mtok / 1e6``."""
    p = prices.get(model)
    if p is None:
        raise OutcomeError(f"no price for model {model!r} (prices known for: {', '.join(sorted(prices)) or 'none'})")
    return outcome.input_tokens * p["input_per_mtok"] / 1e6 + outcome.output_tokens * p["output_per_mtok"] / 1e6


def models_in(records: Iterable[Record]) -> dict[str, int]:
    """How many records have an outcome for each model."""
    counts: dict[str, int] = {}
    for r in records:
        for m in r.outcomes:
            counts[m] = counts.get(m, 0) + 1
    return counts


def with_ladder(records: Iterable[Record], ladder: Sequence[str]) -> list[Record]:
    """The records that have an outcome for every model of ``ladder``."""
    return [r for r in records if r.has(ladder)]


def records_hash(records: Iterable[Record]) -> str:
    """A stable sha256 over ids, prompts and scores (what a model was trained on)."""
    h = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.id):
        h.update(r.id.encode())
        h.update(b"\0")
        h.update(r.prompt.encode())
        for m in sorted(r.outcomes):
            o = r.outcomes[m]
            h.update(f"\0{m}\0{o.score:.6g}\0{o.input_tokens}\0{o.output_tokens}".encode())
        h.update(b"\n")
    return h.hexdigest()


def fold_of(record_id: str, k: int, seed: int = 0) -> int:
    """A stable fold number in ``range(k)`` from the id alone (no leakage between folds)."""
    d = hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(d, "big") % k


class OutcomeWriter:
    """Append records in the outcomes format, one JSON line each (used by ``tierwise eval``)."""

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = self.path.open("a" if append else "w", encoding="utf-8")
        self.count = 0

    def write(self, record: Record | Mapping[str, Any]) -> None:
        if self._fh is None:
            raise ValueError("writer is closed")
        if not isinstance(record, Record):
            record = parse_record(dict(record), "record")
        self._fh.write(json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")
        self.count += 1

    def add(self, id: str, prompt: str, outcomes: Mapping[str, Outcome | Mapping[str, Any]], *,
            dataset: str | None = None, category: str | None = None) -> None:
        raw = {m: (o.to_json() if isinstance(o, Outcome) else dict(o)) for m, o in outcomes.items()}
        self.write({"id": id, "dataset": dataset, "category": category, "prompt": prompt, "outcomes": raw})

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "OutcomeWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_outcomes(path: str | os.PathLike[str], records: Iterable[Record | Mapping[str, Any]]) -> int:
    with OutcomeWriter(path) as w:
        for r in records:
            w.write(r)
        return w.count
