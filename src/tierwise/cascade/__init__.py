"""Cascades, in one place: answer on a cheap rung first, verify the answer, escalate on failure.

- ``router``: the ``cascade`` routing strategy and its ``CascadePlan`` (ladder, verifiers, note);
- ``verify``: the verifiers (stop_reason, json_schema, regex, tool_fields, answer_score, llm_grader);
- ``run``: ``run_cascade``, rung by rung, each rung an ``Attempt`` (tokens, cost, verdict);
- ``proxy``: a cascade on the proxy's hot path, every rung through the attempt loop (retries, breaker);
- ``evaluate``: cascades on recorded outcomes (``tierwise bench``: cost/quality curves);
- ``training``: the learned verifier's answer features and ``fit_verifier``.
"""

from __future__ import annotations

from .router import CascadePlan, CascadeRouter
from .run import CascadeResult, escalation_note, run_cascade
from .verify import VERIFIERS, Verdict, Verifier, build_verifiers

__all__ = ["CascadePlan", "CascadeRouter", "CascadeResult", "escalation_note", "run_cascade", "VERIFIERS", "Verdict",
           "Verifier", "build_verifiers"]
