"""Quality signals: a downstream outcome for one proxied request.

Every proxied answer carries ``x-tierwise-request-id``; when the caller learns whether the answer
was good (a validator passed, a user accepted it, a score), it reports it:

- over HTTP: ``POST /v1/feedback`` on the proxy with ``{"request_id": ..., "outcome": "ok"|"bad",
  "score": 0..1, "valid": true|false, "source": "...", "note": "..."}``;
- in Python: :func:`send_feedback` (HTTP, for services talking to a proxy) or
  :func:`record_feedback` (straight into the ledger DB).

A feedback row is an *error* when the outcome is ``bad``, the validator said false, or the score is
below ``monitor.bad_score``. The monitor and A/B reports count these errors per task type and arm.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa

from .errors import InvalidRequestError
from .ledger.evidence_schema import feedback

__all__ = ["Feedback", "parse_feedback", "record_feedback", "send_feedback"]

_FIELDS = {"request_id", "outcome", "score", "valid", "source", "note", "task"}


@dataclass(frozen=True, slots=True)
class Feedback:
    request_id: str
    outcome: str | None = None
    score: float | None = None
    valid: bool | None = None
    source: str | None = None
    note: str | None = None
    task: str | None = None

    def is_error(self, bad_score: float = 0.5) -> bool:
        if self.outcome == "bad" or self.valid is False:
            return True
        return self.score is not None and self.score < bad_score


def parse_feedback(data: Any) -> Feedback:
    """Validate a decoded feedback object; raises InvalidRequestError naming the problem."""
    if not isinstance(data, Mapping):
        raise InvalidRequestError("feedback body must be a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise InvalidRequestError(f"unknown feedback field(s): {', '.join(unknown)} (known: {', '.join(sorted(_FIELDS))})")
    rid = data.get("request_id")
    if not isinstance(rid, str) or not rid.strip() or len(rid) > 64:
        raise InvalidRequestError("request_id: required, the x-tierwise-request-id of the answer (at most 64 characters)")
    outcome = data.get("outcome")
    if outcome is not None and outcome not in ("ok", "bad"):
        raise InvalidRequestError(f"outcome: expected \"ok\" or \"bad\", got {outcome!r}")
    score = data.get("score")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score) or not 0 <= score <= 1:
            raise InvalidRequestError(f"score: expected a number from 0 to 1, got {score!r}")
        score = float(score)
    valid = data.get("valid")
    if valid is not None and not isinstance(valid, bool):
        raise InvalidRequestError(f"valid: expected true or false, got {valid!r}")
    if outcome is None and score is None and valid is None:
        raise InvalidRequestError("feedback needs at least one of: outcome (\"ok\"/\"bad\"), score (0-1), valid (true/false)")
    for name in ("source", "note", "task"):
        v = data.get(name)
        if v is not None and not isinstance(v, str):
            raise InvalidRequestError(f"{name}: expected a string")
    return Feedback(request_id=rid.strip(), outcome=outcome, score=score, valid=valid,
                    source=(data.get("source") or None) and data["source"][:64],
                    note=(data.get("note") or None) and data["note"][:2000],
                    task=(data.get("task") or None) and data["task"][:64])


def record_feedback(engine: sa.Engine, fb: Feedback | Mapping[str, Any], *, bad_score: float = 0.5,
                    ts: float | None = None) -> dict[str, Any]:
    """Store one feedback row; returns what was stored (with its id and error verdict)."""
    if not isinstance(fb, Feedback):
        fb = parse_feedback(fb)
    row = {"ts": time.time() if ts is None else ts, "request_id": fb.request_id, "outcome": fb.outcome, "score": fb.score,
           "valid": fb.valid, "error": fb.is_error(bad_score), "task": fb.task, "source": fb.source, "note": fb.note}
    with engine.begin() as conn:
        res = conn.execute(feedback.insert().values(**row))
    row["id"] = int(res.inserted_primary_key[0])
    return row


def send_feedback(base_url: str, request_id: str, *, outcome: str | None = None, score: float | None = None,
                  valid: bool | None = None, source: str | None = None, note: str | None = None,
                  api_key: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """POST a feedback record to a tierwise proxy at ``base_url``; returns the stored record.

    Raises ``tierwise.errors.APIError`` (the class for the status) when the proxy refuses it.
    """
    from .errors import UpstreamConnectionError, error_for_status

    body = {k: v for k, v in {"request_id": request_id, "outcome": outcome, "score": score, "valid": valid,
                               "source": source, "note": note}.items() if v is not None}
    headers = {"content-type": "application/json"}
    if api_key:
        headers["x-api-key"] = api_key
    req = urllib.request.Request(base_url.rstrip("/") + "/v1/feedback", data=json.dumps(body).encode(),
                                 headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise error_for_status(exc.code, exc.read(), dict(exc.headers)) from None
    except urllib.error.URLError as exc:
        raise UpstreamConnectionError(f"tierwise proxy at {base_url} unreachable: {exc.reason}") from None
