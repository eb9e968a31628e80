"""Running a cascade: call the cheapest rung, verify the answer, escalate until one passes.

Every attempt is kept (model, tokens, cost, verdict), so the ledger records the whole chain and
the cost of failed attempts counts. The last rung's answer is returned even if it fails (there is
nowhere higher to go); the verdicts say so.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import orjson

from ..adapt import adapt_request
from ..catalog import Catalog
from ..cost import Usage, cost_nanos
from ..jsonbody import dumps as dumps_body
from ..routing.cascade import CascadePlan

__all__ = ["run_cascade", "CascadeResult", "escalation_note"]

SendFn = Callable[[bytes, str], Awaitable[Any]]  # (body, model id) -> UpstreamResponse (non-streaming)


@dataclass
class CascadeResult:
    message: dict[str, Any]
    body: bytes
    model: str
    tier: str
    escalations: int
    attempts: list[dict[str, Any]] = field(default_factory=list)
    prior_usage: Usage = field(default_factory=Usage)
    prior_cost_nanos: int = 0
    headers: dict[str, str] = field(default_factory=dict)


def escalation_note(reasons: list[str]) -> str:
    return ("Note: a previous answer to this request failed an automatic check (" + "; ".join(reasons)[:300]
            + "). Make sure your answer avoids that.")


def _with_note(body: dict[str, Any], note: str) -> None:
    system = body.get("system")
    if system is None:
        body["system"] = note
    elif isinstance(system, str):
        body["system"] = system + "\n\n" + note
    elif isinstance(system, list):
        body["system"] = [*system, {"type": "text", "text": note}]


async def run_cascade(send: SendFn, catalog: Catalog, plan: CascadePlan, original: dict[str, Any],
                      first_body: dict[str, Any]) -> CascadeResult:
    """``original`` is the request before adaptation; ``first_body`` the one adapted to the first rung."""
    attempts: list[dict[str, Any]] = []
    prior = Usage()
    prior_cost = 0
    failures: list[str] = []
    ladder = list(plan.ladder)
    for i, tier in enumerate(ladder):
        model = catalog.model_for_tier(tier)
        if i == 0:
            body = dict(first_body, stream=False)
        else:
            body = copy.deepcopy(original)
            adapt_request(body, model, tier=tier)
            body["model"] = model.id
            body["stream"] = False
            if plan.note and failures:
                _with_note(body, escalation_note(failures))
        t0 = time.perf_counter()
        resp = await send(dumps_body(body), model.id)
        raw = resp.body or b"{}"
        message = orjson.loads(raw)
        usage = Usage.from_api(message.get("usage"))
        cost = cost_nanos(model, usage)
        failed = []
        for verifier in plan.verifiers:
            verdict = await verifier.check(message, body)
            if not verdict.ok:
                failed.append(f"{verdict.verifier}: {verdict.reason}")
                break
        attempts.append({"tier": tier, "model": model.id, "status": 200, "input_tokens": usage.input_tokens,
                         "output_tokens": usage.output_tokens, "cost_nanos": cost, "verified": not failed,
                         "failed": failed[0] if failed else None, "latency_ms": round((time.perf_counter() - t0) * 1000, 2)})
        if not failed or i == len(ladder) - 1:
            return CascadeResult(message=message, body=raw, model=message.get("model") or model.id, tier=tier,
                                 escalations=i, attempts=attempts, prior_usage=prior, prior_cost_nanos=prior_cost,
                                 headers=dict(resp.headers))
        failures.extend(failed)
        prior = Usage(prior.input_tokens + usage.input_tokens, prior.output_tokens + usage.output_tokens,
                      prior.cache_write_5m_tokens + usage.cache_write_5m_tokens,
                      prior.cache_write_1h_tokens + usage.cache_write_1h_tokens,
                      prior.cache_read_tokens + usage.cache_read_tokens)
        prior_cost += cost
    raise AssertionError("unreachable: the ladder has at least two rungs")
