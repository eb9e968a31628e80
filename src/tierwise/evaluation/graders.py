"""Evaluation inputs and their graders.

An inputs file is JSONL. Most lines are items::

    {"id": "ci-001", "task": "classify_intent", "prompt": "Where is my parcel?",
     "reference": "order_status", "checks": [{"type": "match", "normalize": true}]}

optionally with ``system``, ``max_tokens`` and ``rubric``. A line with ``"type": "task"`` gives every
item of a task type its checks (combined with the item's own), rubric, system prompt or max_tokens::

    {"type": "task", "task": "classify_intent", "checks": [{"type": "regex", "pattern": "^\\w+$"}]}

Checks (all must pass; the item's score is their mean):

- ``match``: ``value`` (default: the item's ``reference``); ``normalize`` (case, spaces, punctuation);
  ``contains`` (the answer contains it rather than equals it);
- ``regex``: ``pattern``, optional ``flags`` ("i", "m", "s") and ``must_match`` (default true);
- ``json_schema``: ``schema``; the answer (or the first JSON block in it) must validate;
- ``length``: ``min_words`` / ``max_words`` / ``max_chars``;
- ``python``: ``callable`` = ``"module:function"`` or ``"file.py:function"`` (relative to the inputs
  file), called as ``f(output, item)`` and returning a bool, a 0..1 score, or ``(bool, "why")``;
- ``judge``: an LLM judge scores the answer against ``rubric`` (blind; see ``judge.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..config import TASK_NAME
from ..errors import ConfigError

__all__ = ["EvalItem", "Grade", "load_items", "grade_checks", "CHECK_TYPES", "extract_json", "normalize"]

CHECK_TYPES = ("match", "exact", "regex", "json_schema", "length", "python", "judge")
_ITEM_KEYS = {"id", "task", "prompt", "messages", "system", "max_tokens", "reference", "checks", "rubric", "metadata"}
_TASK_KEYS = {"type", "task", "checks", "rubric", "system", "max_tokens"}


@dataclass(slots=True)
class EvalItem:
    id: str
    task: str
    prompt: str
    messages: list[dict[str, Any]]
    system: str | None = None
    max_tokens: int = 1024
    reference: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    rubric: str | None = None
    base_dir: Path | None = None

    def params(self, model: str) -> dict[str, Any]:
        p: dict[str, Any] = {"model": model, "max_tokens": self.max_tokens, "messages": self.messages}
        if self.system:
            p["system"] = self.system
        return p

    @property
    def needs_judge(self) -> bool:
        return any(c["type"] == "judge" for c in self.checks)


@dataclass(slots=True)
class Grade:
    grader: str
    passed: bool
    score: float
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"grader": self.grader, "passed": self.passed, "score": round(self.score, 4), "detail": self.detail[:300]}


def normalize(text: str) -> str:
    table = str.maketrans(dict.fromkeys(string.punctuation, " "))
    return " ".join(text.lower().translate(table).split())


def extract_json(text: str) -> Any:
    """The JSON value in ``text``: all of it, a ```json fence, or the outermost {...} / [...] block."""
    s = text.strip()
    try:
        return json.loads(s)
    except ValueError:
        pass
    m = re.search(r"```(?:json)?\s*(.*?)```", s, re.S)
    if m:
        try:
            return json.loads(m.group(1))
        except ValueError:
            pass
    for open_, close in (("{", "}"), ("[", "]")):
        i, j = s.find(open_), s.rfind(close)
        if 0 <= i < j:
            try:
                return json.loads(s[i : j + 1])
            except ValueError:
                continue
    raise ValueError("no JSON value found in the answer")


def _check_spec(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("type") not in CHECK_TYPES:
        raise ConfigError(f"{where}: a check is an object with \"type\" one of {', '.join(CHECK_TYPES)}, got {raw!r}")
    c = dict(raw)
    kind = c["type"] = "match" if c["type"] == "exact" else c["type"]
    if kind == "regex":
        if not isinstance(c.get("pattern"), str):
            raise ConfigError(f"{where}: a regex check needs \"pattern\"")
        flags = 0
        for ch in str(c.get("flags", "")):
            flags |= {"i": re.I, "m": re.M, "s": re.S}.get(ch, 0)
        try:
            c["_re"] = re.compile(c["pattern"], flags)
        except re.error as exc:
            raise ConfigError(f"{where}: bad regex {c['pattern']!r}: {exc}") from None
    elif kind == "json_schema":
        schema = c.get("schema")
        if not isinstance(schema, dict):
            raise ConfigError(f"{where}: a json_schema check needs \"schema\" (a JSON Schema object)")
        try:
            import jsonschema
        except ImportError:  # pragma: no cover - a declared dependency
            raise ConfigError("json_schema checks need the jsonschema package: pip install jsonschema") from None
        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"{where}: invalid JSON Schema: {exc.message}") from None
        c["_validator"] = cls(schema)
    elif kind == "length":
        for k in ("min_words", "max_words", "max_chars"):
            if k in c and (not isinstance(c[k], int) or isinstance(c[k], bool) or c[k] < 0):
                raise ConfigError(f"{where}: {k} must be a whole number >= 0")
        if not any(k in c for k in ("min_words", "max_words", "max_chars")):
            raise ConfigError(f"{where}: a length check needs min_words, max_words or max_chars")
    elif kind == "python":
        if not isinstance(c.get("callable"), str) or ":" not in c["callable"]:
            raise ConfigError(f"{where}: a python check needs \"callable\": \"module:function\" or \"file.py:function\"")
    elif kind == "judge":
        if c.get("rubric") is not None and not isinstance(c["rubric"], str):
            raise ConfigError(f"{where}: rubric must be a string")
    return c


def _load_callable(spec: str, base: Path | None, where: str) -> Callable[..., Any]:
    mod_name, _, func = spec.rpartition(":")
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            if not path.is_absolute() and base is not None:
                path = base / path
            if not path.exists():
                raise ConfigError(f"{where}: python check file {path} not found")
            sp = importlib.util.spec_from_file_location(f"tierwise_eval_check_{abs(hash(str(path)))}", path)
            assert sp is not None and sp.loader is not None
            module = importlib.util.module_from_spec(sp)
            sp.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code: report, don't crash
        raise ConfigError(f"{where}: cannot load {spec!r}: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ConfigError(f"{where}: {spec!r}: no function {func!r}")
    return fn


def load_items(path: str | Path, *, max_tokens: int = 1024) -> list[EvalItem]:
    """Parse and validate an inputs file; errors name the file and line."""
    from ..files import read_user_text

    p = Path(path)
    text = read_user_text(p, "the inputs: one JSONL file", kind="inputs file")
    defaults: dict[str, dict[str, Any]] = {}
    raw_items: list[tuple[str, dict[str, Any]]] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        where = f"{p}:{n}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object")
        if data.get("type") == "task":
            bad = sorted(set(data) - _TASK_KEYS)
            if bad:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(bad)} in a task line (known: {', '.join(sorted(_TASK_KEYS))})")
            task = data.get("task")
            if not isinstance(task, str) or not TASK_NAME.match(task):
                raise ConfigError(f"{where}: \"task\" must be a task type name")
            d = defaults.setdefault(task, {"checks": []})
            d["checks"] += [_check_spec(c, f"{where} checks[{i}]") for i, c in enumerate(data.get("checks") or [])]
            for k in ("rubric", "system", "max_tokens"):
                if k in data:
                    d[k] = data[k]
            continue
        raw_items.append((where, data))
    items: list[EvalItem] = []
    seen: set[str] = set()
    for where, data in raw_items:
        bad = sorted(set(data) - _ITEM_KEYS)
        if bad:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(bad)} (known: {', '.join(sorted(_ITEM_KEYS))})")
        iid = data.get("id")
        if isinstance(iid, int) and not isinstance(iid, bool):
            iid = str(iid)
        if not isinstance(iid, str) or not iid or len(iid) > 128:
            raise ConfigError(f"{where}: \"id\" must be a non-empty string (at most 128 characters)")
        if iid in seen:
            raise ConfigError(f"{where}: duplicate id {iid!r}")
        seen.add(iid)
        task = data.get("task")
        if not isinstance(task, str) or not TASK_NAME.match(task):
            raise ConfigError(f"{where}: \"task\" must be a task type name like classify_intent, got {task!r}")
        d = defaults.get(task, {})
        messages = data.get("messages")
        prompt = data.get("prompt")
        if messages is None:
            if not isinstance(prompt, str) or not prompt.strip():
                raise ConfigError(f"{where}: an item needs \"prompt\" (a string) or \"messages\"")
            messages = [{"role": "user", "content": prompt}]
        elif not isinstance(messages, list) or not messages or not all(isinstance(m, dict) and m.get("role") in ("user", "assistant") for m in messages):
            raise ConfigError(f"{where}: \"messages\" must be a non-empty list of {{role, content}} objects")
        if prompt is None:
            last = [m for m in messages if m.get("role") == "user"]
            c = last[-1].get("content") if last else ""
            prompt = c if isinstance(c, str) else " ".join(b.get("text", "") for b in c if isinstance(b, dict))
        mt = data.get("max_tokens", d.get("max_tokens", max_tokens))
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise ConfigError(f"{where}: max_tokens must be a positive whole number")
        ref = data.get("reference")
        if ref is not None and not isinstance(ref, str):
            ref = json.dumps(ref)
        checks = list(d.get("checks", [])) + [_check_spec(c, f"{where} checks[{i}]") for i, c in enumerate(data.get("checks") or [])]
        item = EvalItem(id=iid, task=task, prompt=prompt, messages=messages, system=data.get("system", d.get("system")),
                        max_tokens=mt, reference=ref, checks=checks, rubric=data.get("rubric", d.get("rubric")),
                        base_dir=p.parent)
        for c in checks:
            if c["type"] == "match" and c.get("value") is None and ref is None:
                raise ConfigError(f"{where}: a match check needs \"value\" or the item's \"reference\"")
            if c["type"] == "judge" and not (c.get("rubric") or item.rubric):
                raise ConfigError(f"{where}: a judge check needs a rubric (on the check, the item or its task line)")
            if c["type"] == "python" and "_fn" not in c:
                c["_fn"] = _load_callable(c["callable"], p.parent, where)
        items.append(item)
    if not items:
        raise ConfigError(f"{p}: no items (one JSON object per line with id, task and prompt)")
    return items


def _grade_one(check: dict[str, Any], output: str, item: EvalItem) -> Grade:
    kind = check["type"]
    if kind == "match":
        want = str(check.get("value") if check.get("value") is not None else item.reference)
        a, b = (normalize(output), normalize(want)) if check.get("normalize", True) else (output.strip(), want.strip())
        ok = (b in a) if check.get("contains") else (a == b)
        return Grade("match", ok, 1.0 if ok else 0.0, f"{'contains' if check.get('contains') else 'equals'} {want[:60]!r}")
    if kind == "regex":
        found = check["_re"].search(output) is not None
        ok = found if check.get("must_match", True) else not found
        return Grade("regex", ok, 1.0 if ok else 0.0, f"/{check['pattern'][:60]}/ {'matched' if found else 'no match'}")
    if kind == "json_schema":
        try:
            value = extract_json(output)
        except ValueError as exc:
            return Grade("json_schema", False, 0.0, str(exc))
        errors = sorted(check["_validator"].iter_errors(value), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            at = "/".join(str(x) for x in e.path) or "(root)"
            return Grade("json_schema", False, 0.0, f"{at}: {e.message}"[:300])
        return Grade("json_schema", True, 1.0, "valid")
    if kind == "length":
        words = len(output.split())
        problems = []
        if "min_words" in check and words < check["min_words"]:
            problems.append(f"{words} words < {check['min_words']}")
        if "max_words" in check and words > check["max_words"]:
            problems.append(f"{words} words > {check['max_words']}")
        if "max_chars" in check and len(output) > check["max_chars"]:
            problems.append(f"{len(output)} chars > {check['max_chars']}")
        return Grade("length", not problems, 0.0 if problems else 1.0, "; ".join(problems) or f"{words} words")
    if kind == "python":
        try:
            res = check["_fn"](output, item)
        except Exception as exc:  # noqa: BLE001 - a failing user check fails the item, with the reason
            return Grade("python", False, 0.0, f"{check['callable']} raised {type(exc).__name__}: {exc}")
        detail = check["callable"]
        if isinstance(res, tuple):
            res, detail = res[0], f"{check['callable']}: {res[1]}"
        if isinstance(res, bool):
            return Grade("python", res, 1.0 if res else 0.0, detail)
        if isinstance(res, (int, float)):
            score = max(0.0, min(1.0, float(res)))
            return Grade("python", score >= float(check.get("pass", 0.5)), score, detail)
        return Grade("python", False, 0.0, f"{check['callable']} returned {type(res).__name__}, expected bool or number")
    raise ValueError(f"not a local check: {kind}")


def grade_checks(output: str, item: EvalItem, checks: Iterable[dict[str, Any]] | None = None) -> list[Grade]:
    """Every non-judge check of ``item`` on ``output`` (judge checks are graded by ``judge.py``)."""
    return [_grade_one(c, output, item) for c in (item.checks if checks is None else checks) if c["type"] != "judge"]
