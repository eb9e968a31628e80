"""The kinds of work a request can be, and how to recognise them from the text a live request carries.

Each category has the tier the seeds' articles give it (``TIERS``; the team's ``[registry]`` wins
where a category is also a registry task type, so ``tierwise eval apply`` results override these),
a phrase for the decision's reason (``LABELS``), and cues: words and two-word phrases that point
to it, with weights. :func:`categorize` scores every category in one pass over the words of a
bounded piece of text (an inverted index, no per-category scan), doubles the weight of cues in the
opening instruction (the first ``LEAD`` words), and returns the best category with a confidence
from its margin over the runner-up.

The cues were written from the seeds' task descriptions and the realistic set's *dev* split only
(``tierwise.evaldata``); the test split is for reporting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

__all__ = ["TIERS", "LABELS", "Category", "categorize", "words_of", "short_output"]

# category -> (tier, the reason's phrase)
_DEFS: dict[str, tuple[str, str]] = {
    # Haiku work: short, verifiable outputs
    "classify_intent": ("fast", "intent or label classification"),
    "extract_entities": ("fast", "entity or field extraction"),
    "summarize_short": ("fast", "short summary or headline"),
    "parse_schema": ("fast", "parsing or reformatting into a known structure"),
    "moderate_content": ("fast", "content moderation check"),
    "triage_ticket": ("fast", "routing or triage of a ticket"),
    "simple_faq": ("fast", "simple question or FAQ answer"),
    "reformat_text": ("fast", "simple rewrite or translation"),
    # Sonnet work
    "draft_email": ("balanced", "drafting an email or message"),
    "generate_code": ("balanced", "code generation"),
    "review_code": ("balanced", "code review or bounded debugging"),
    "support_reply": ("balanced", "customer support reply"),
    "plan_agent_steps": ("balanced", "agent step planning"),
    "nuanced_judgement": ("balanced", "judgement call weighing a few factors"),
    "draft_longform": ("balanced", "long-form writing"),
    "synthesize_documents": ("balanced", "answer or summary from provided documents"),
    "explain_concept": ("balanced", "explanation of code or a concept"),
    # Opus work
    "legal_analysis": ("deep", "cross-clause contract or legal analysis"),
    "financial_model": ("deep", "multi-variable financial modelling"),
    "architecture_decision": ("deep", "architecture decision with long-lived trade-offs"),
    "debug_codebase": ("deep", "debugging across a large codebase or distributed system"),
    "research_synthesis": ("deep", "synthesis of several sources with conflicting findings"),
    "security_review": ("deep", "security-critical review"),
    "plan_irreversible": ("deep", "plan with irreversible consequences"),
    "strategic_analysis": ("deep", "strategic analysis of options and trade-offs"),
}
TIERS: dict[str, str] = {k: v[0] for k, v in _DEFS.items()}
LABELS: dict[str, str] = {k: v[1] for k, v in _DEFS.items()}

# cue -> weight, per category. A cue is a normalised word ("clause") or two words ("break clause").
_CUES: dict[str, dict[str, float]] = {
    "classify_intent": {
        "classify": 3, "classification": 2, "categorize": 3, "categorise": 3, "intent": 3, "label": 2.5, "labels": 2,
        "sentiment": 3, "category": 1.5, "which category": 3, "one of": 2, "tag each": 3, "dialogue act": 3,
        "yes or no": 2, "yes/no": 2, "true or false": 2, "one word": 2, "label only": 3, "spam": 1.5,
        "which label": 3, "pick exactly": 2, "is this": 0.5, "decide which": 1.5, "navigational": 2,
    },
    "extract_entities": {
        "extract": 3, "extraction": 2, "pull out": 3, "pull every": 3, "find all": 2, "list every": 2.5,
        "entities": 3, "names": 1, "dates": 1, "as json": 1.5, "return json": 1.5, "get the": 1, "identify the": 1,
        "from this": 0.5, "from the": 0.3, "mentioned": 1.5, "urls": 1.5, "hashtag": 2, "phone numbers": 2,
        "who is the": 1, "what are the": 0.5, "return the": 1,
    },
    "summarize_short": {
        "summarise": 3, "summarize": 3, "summary": 2, "tl;dr": 3, "tldr": 3, "headline": 3, "one sentence": 2,
        "one-line": 2, "one line": 2, "bullet point": 1.5, "bullet points": 1.5, "condense": 3, "shorten": 2.5,
        "tweet-length": 2, "in two lines": 2, "5 words": 2, "recap": 2, "action items": 2,
    },
    "parse_schema": {
        "convert": 2.5, "parse": 2.5, "json": 1, "csv": 1.5, "yaml": 2, "toml": 2, "xml": 1.5, "schema": 1.5,
        "iso 8601": 3, "normalise": 2, "normalize": 2, "reformat": 2.5, "fill this": 2, "validate this": 2,
        "map these": 2.5, "enum": 1.5, "structured data": 1.5, "into a": 0.5, "pretty json": 2, "columns": 1,
    },
    "moderate_content": {
        "moderation": 3, "moderate": 2, "toxicity": 3, "profanity": 3, "offensive": 2.5, "safe to publish": 3,
        "violate": 2, "violates": 2, "policy": 0.5, "slurs": 3, "self-harm": 3, "harassment": 2.5, "spam": 1.5,
        "ham": 1.5, "flag whether": 3, "screen this": 2.5, "fake review": 2.5, "personal attack": 2.5,
        "leaked secret": 2.5, "redacted": 1, "nudity": 2, "content safety": 3, "comment filter": 2.5,
        "off-topic": 2, "on-topic": 2, "solicitation": 2,
    },
    "triage_ticket": {
        "triage": 3, "route": 2, "route this": 3, "route to": 2.5, "escalated": 1.5, "escalate": 1, "priority": 2.5,
        "severity": 2.5, "queue": 1.5, "on-call": 1.5, "ticket": 1.5, "which team": 2.5, "assign a": 2,
        "department": 1.5, "owns this": 2, "duplicate of": 2, "hand off": 1.5, "handoff": 2, "mailbox": 2,
        "labels from": 2, "add labels": 2.5, "should get": 1.5, "should receive": 2, "sales-qualified": 2.5,
        "churn_risk": 2.5, "best-suited": 2, "component owner": 3, "send this": 1,
    },
    "simple_faq": {
        "what's the": 1, "what is the": 1, "who wrote": 2.5, "capital of": 3, "how many": 1, "how do i convert": 2,
        "opening hours": 2, "faq": 2.5, "thanks": 1.5, "thank you": 1, "hi": 1.5, "hello": 1.5, "good morning": 1.5,
        "using only this": 2, "according to": 1.5, "knowledge base": 1.5, "knowledge:": 2, "quick one": 2,
        "in simple words": 1.5, "what time zone": 3, "boiling point": 3, "difference between": 0.5, "briefly": 1,
        "answer in one sentence": 2, "are you open": 3, "that's all": 2,
    },
    "reformat_text": {
        "translate": 3, "translation": 2, "rewrite": 2, "fix the capitalisation": 3, "correct the spelling": 3,
        "spelling": 2, "more formal": 3, "title case": 3, "passive": 2, "active voice": 2.5, "deduplicate": 3,
        "sort these": 2.5, "numbered list": 2, "comma-separated": 2, "remove all html": 3, "mask": 2,
        "expand these": 3, "abbreviations": 2, "slug": 2.5, "plain english": 2, "without the jargon": 2.5,
        "into german": 2, "to spanish": 2, "to french": 2, "into japanese": 2, "celsius": 2,
    },
    "draft_email": {
        "email": 2.5, "e-mail": 2.5, "draft": 1.5, "compose": 2, "letter": 2, "reply to": 1, "follow-up": 2,
        "note to": 1.5, "thank-you note": 3, "out-of-office": 3, "resignation": 2.5, "announcing": 1.5,
        "outreach": 2, "invitation": 1, "decline": 1.5, "investors": 0.5, "write a short email": 3, "message to": 1.5,
    },
    "generate_code": {
        "write a": 1, "implement": 2.5, "function": 2, "script": 2, "class": 1.2, "component": 1.5, "endpoint": 1.5,
        "python": 1.5, "typescript": 1.5, "javascript": 1.5, "rust": 1.5, "go": 0.8, "kotlin": 1.5, "sql query": 2.5,
        "bash script": 2.5, "dockerfile": 2, "terraform": 2, "workflow": 0.8, "github actions": 2, "middleware": 1.5,
        "handler": 1.5, "cli": 1.5, "decorator": 2, "model and admin": 2, "trigger": 1, "with tests": 1.5, "migration": 2, "write an": 1,
        "type hints": 2, "doctests": 2, "react": 1, "django": 1, "fastapi": 1, "generate a": 1, "create a": 0.5,
    },
    "review_code": {
        "review": 1.5, "review this": 3, "code review": 3, "what's wrong": 3, "debug": 2, "bug": 1.5, "bugs": 1.5,
        "crashes": 1.5, "fails": 1.5, "failing": 1.5, "why does": 1.5, "why does my": 2.5, "is there anything wrong": 3,
        "re-render": 2, "data race": 2, "slow on": 2, "speed it up": 2, "n+1": 2.5, "look over": 2.5,
        "check my": 2, "returns garbage": 3, "thread-safe": 2, "edge cases": 1.5, "pr diff": 2.5, "fix it": 1.5,
        "oomkilled": 2, "```": 1, "traceback": 2, "error": 0.8, "compiler": 1.5, "improvements": 1,
    },
    "support_reply": {
        "customer": 1.2, "customers": 0.8, "support": 1.5, "reply to": 2, "respond to": 2.5, "response to": 2,
        "refund": 1.5, "apologise": 1.5, "apologize": 1.5, "frustrated": 1.5, "upset": 1.5, "complains": 2,
        "review:": 1, "macro": 2, "support response": 3, "user says": 2, "user writes": 2.5, "customer asks": 3,
        "customer:": 2, "guest": 1, "parent asking": 2.5, "answer this support": 3, "draft a response": 2,
        "draft the reply": 2.5, "write a reply": 2.5, "helpful, honest reply": 3,
    },
    "plan_agent_steps": {
        "agent": 2.5, "plan": 1.5, "plan the": 2, "steps": 1.5, "step-by-step": 1.5, "tool calls": 3, "tools": 1,
        "break down": 2, "checkpoints": 2, "checklist": 1.5, "sub-tasks": 2.5, "outline a plan": 2.5,
        "lay out": 1.5, "step plan": 2.5, "step sequence": 2.5, "what are its steps": 3, "fallback": 1,
        "automation": 1.5, "break this goal": 3, "design the step": 3, "write the plan": 2,
    },
    "nuanced_judgement": {
        "should i": 3, "should we": 2, "should a": 2, "is it worth": 2.5, "is it appropriate": 3, "good idea": 3,
        "what could go wrong": 2.5, "fair": 1.5, "biased": 2, "help me think": 3, "risks": 1.5, "honestly": 1,
        "which would you": 2, "would you consider": 2.5, "would you recommend": 2, "how should i": 2.5,
        "how worried": 3, "balanced take": 3, "assess the tone": 3, "how do i handle": 2.5, "misleading": 2,
        "evaluate this product idea": 3, "say yes": 2, "which of these": 1.5, "tagline": 2, "briefly": 0.5,
    },
    "draft_longform": {
        "blog post": 3, "article": 2, "1,500-word": 3, "2,000-word": 3, "1,000-word": 3, "1,200-word": 3,
        "words": 1, "long-form": 3, "whitepaper": 3, "guide": 1.5, "user guide": 3, "speech": 3, "short story": 3,
        "chapter": 3, "newsletter": 2, "landing page": 2.5, "readme": 2, "case study": 3, "op-ed": 3,
        "handbook": 3, "course outline": 3, "travel guide": 3, "grant application": 3, "about us": 3,
        "explainer": 2.5, "comprehensive": 2, "detailed": 1, "write the": 1, "faq (": 2, "long newsletter": 3,
    },
    "synthesize_documents": {
        "using the excerpts": 3, "based on these": 2.5, "based on this": 2, "based on our": 2, "using only": 1.5,
        "from the policy": 3, "excerpts": 2.5, "excerpt": 2, "snippets": 2.5, "snippet": 2, "retrieved": 2.5,
        "passages": 2.5, "docs": 1.5, "doc a": 2, "doc 1": 2, "the context": 2, "cite": 2, "according": 1,
        "wiki": 1.5, "runbook": 2, "handbook": 1.5, "meeting notes": 2, "what does the": 1.5, "use the context": 3,
        "using the": 1, "given this section": 3, "p1:": 2, "[1]": 2.5, "(1)": 1, "what do they have in common": 2.5,
    },
    "explain_concept": {
        "explain": 3, "what is a": 2, "what is the difference": 2.5, "what's the difference": 2.5,
        "difference between": 2, "how does": 2, "how do": 1, "why is": 1.5, "walk me through": 2.5,
        "like i'm": 2.5, "in plain terms": 2.5, "piece by piece": 3, "when to use": 2, "what happens when": 2.5,
        "what does": 1.5, "actually do": 2, "simply": 1.5, "example": 0.8, "for someone": 2, "to someone": 2,
    },
    "legal_analysis": {
        "clause": 4, "clauses": 4, "contract": 2.5, "msa": 3, "dpa": 2.5, "lease": 3, "landlord": 2, "tenant": 2,
        "indemnity": 4, "indemnification": 4, "liability": 2.5, "non-compete": 4, "garden leave": 4,
        "shareholders": 3, "drag-along": 4, "articles": 1, "force majeure": 4, "arbitration": 4, "enforceable": 4,
        "class-action": 3, "earn-out": 4, "ip assignment": 4, "nda": 2.5, "sow": 2, "order of precedence": 4,
        "precedence": 3, "ccpa": 3, "cpra": 3, "redline": 3, "liquidated damages": 4, "extension of time": 3,
        "break clause": 5, "break notice": 5, "carve-out": 3, "carves out": 3, "gross negligence": 3,
        "consequential": 2.5, "new york law": 4, "employment contract": 3, "disciplinary": 2, "dismiss": 2,
        "legal": 1.5, "terms": 0.8, "licensor": 3, "licensee": 3, "change of control": 3, "service charge": 2,
        "cap applies": 3, "exposure": 1.5, "retention schedule": 2.5, "audit clause": 3,
    },
    "financial_model": {
        "dcf": 5, "wacc": 5, "npv": 5, "irr": 5, "moic": 5, "ltv/cac": 5, "ltv": 3, "cac": 3, "unit economics": 4,
        "free cash flow": 4, "enterprise value": 4, "terminal growth": 4, "runway": 3, "burn": 2.5, "burns": 2.5,
        "break-even": 3, "three-statement": 5, "working capital": 4, "deferred revenue": 4, "cohort": 2.5,
        "arr": 2, "mrr": 2, "gross margin": 2.5, "contribution margin": 4, "take rate": 3, "churn": 1.5,
        "sensitivity": 3, "sensitivity table": 4, "scenarios": 2.5, "discount rate": 4, "cost of capital": 4,
        "depreciation": 3, "lease and buying": 3, "refinance": 4, "prepayment": 3, "valuation": 3, "value a": 3,
        "liquidation preference": 4, "liquidation preferences": 4, "409a": 4, "dilution": 3, "venture debt": 4,
        "warrants": 3, "revenue-based": 4, "combined ratio": 5, "premium": 1, "expense ratio": 4, "forecast": 2,
        "forecasts": 2.5, "pipeline": 1, "quota": 2, "attainment": 3, "adr": 3, "occupancy": 2.5,
        "probability-weighted": 4, "capex": 3, "model the": 3, "build a": 0.5, "tax-efficient": 4,
        "corporation tax": 3, "dividend": 2.5, "credit line": 3, "payback": 3, "cash flow": 2.5, "ebitda": 4,
    },
    "architecture_decision": {
        "architecture": 3, "architect": 3, "monolith": 4, "microservices": 3, "services": 1, "split into": 2.5,
        "modular monolith": 4, "kafka": 3, "pulsar": 3, "sqs": 2, "sns": 2, "event backbone": 4,
        "rate limiter": 2.5, "global rate limiter": 4, "multi-region": 4, "active-active": 5, "partitioned": 2.5,
        "multi-tenant": 3, "multi-tenancy": 3, "schema per tenant": 4, "database per tenant": 4, "crdts": 4,
        "crdt": 4, "operational transform": 4, "event sourcing": 4, "feature store": 4, "federation": 3,
        "bff": 3, "consistency": 2.5, "consistency model": 4, "strong consistency": 3, "failover": 3,
        "monorepo": 4, "polyrepo": 4, "caching strategy": 4, "invalidation": 3, "stampedes": 3, "sharded": 3,
        "citus": 4, "aurora": 3, "partitioning": 3, "read replicas": 3, "build our own": 2.5, "or buy": 2.5,
        "trade-offs": 2, "tradeoffs": 2, "design the data architecture": 5, "double-booking": 4,
        "double-entry": 3, "ledger": 1.5, "storage and compute": 4, "ingesting": 2.5, "airflow": 2.5,
        "temporal": 2.5, "argo": 2.5, "gateway": 1, "elasticsearch": 2, "opensearch": 1.5, "typesense": 3,
        "reservation and synchronisation": 4, "boundaries": 2.5, "shared database": 3, "recommend": 1,
    },
    "debug_codebase": {
        "intermittent": 4, "intermittently": 4, "once a week": 3, "once a day": 3, "roughly once": 3, "race condition": 4,
        "race": 2.5, "deadlock": 4, "deadlocks": 4, "memory leak": 4, "leak": 2.5, "heap": 3, "heap dump": 4,
        "p99": 3, "latency": 1.5, "hang": 3, "hangs": 3, "stuck": 2, "py-spy": 4, "exit code 137": 4,
        "oomkilled": 2, "saga": 4, "compensations": 4, "at-least-once": 3, "dedupes": 3, "bisect": 4,
        "regressed": 3, "regression": 2.5, "non-deterministic": 3, "deterministic": 2.5, "re-run": 2,
        "loses": 2, "vanish": 3, "flaky": 3, "1 in 30": 3, "1 in 20": 3, "unavailable errors": 4,
        "istio": 3, "mtls": 2, "disk usage": 2, "consumer group": 3, "lag": 2, "tiered storage": 3,
        "cpu": 1.5, "doubled": 2, "root cause": 3, "hypothesis": 3, "hypothesis tree": 4, "where would you look": 4,
        "walk through the likely causes": 4, "candidate causes": 4, "failure modes": 3, "trace": 2.5,
        "trace every path": 4, "duplicate": 1.5, "duplicates": 2, "duplicated": 3, "during deploys": 4,
        "only under production": 4, "across the codebase": 4, "codebase": 2, "distributed": 3, "provider": 0.5,
        "terraform plan": 3, "scale-in": 3, "find the cause": 4, "find the real cause": 4, "why would": 2,
    },
    "research_synthesis": {
        "studies": 3, "study": 2, "rcts": 4, "rct": 4, "meta-analysis": 4, "observational": 3, "papers": 3,
        "literature": 3, "evidence": 2.5, "synthesise": 4, "synthesize": 4, "synthesis": 3, "reconcile": 4,
        "reconciling": 4, "conflicting": 3, "contradictions": 3, "contradict": 3, "disagree": 3,
        "disagreements": 3, "consensus": 3, "reports": 2, "analyst reports": 4, "sources": 2.5, "transcripts": 2,
        "postmortems": 3, "a/b tests": 3, "guidelines": 2.5, "expert calls": 4, "interviews": 2,
        "user research": 3, "estimates": 2, "what's true": 3, "inconsistencies": 3, "methodology": 3,
        "combine these sources": 4, "draw conclusions": 4, "documents disagree": 4, "causal account": 4,
    },
    "security_review": {
        "security": 2.5, "security review": 5, "vulnerabilities": 4, "vulnerability": 4, "exploitable": 4,
        "attacker": 4, "threat-model": 5, "threat model": 5, "audit": 2.5, "jwt": 3, "oauth": 2, "ssrf": 5,
        "csp": 3, "xss": 4, "csrf": 4, "injection": 3, "deserialization": 4, "pickled": 3, "hmac": 3,
        "password reset": 4, "presigned": 3, "saml": 3, "assertions": 2, "impersonate": 3, "impersonation": 3,
        "authorization model": 4, "double-spending": 4, "timing attacks": 4, "encryption at rest": 4,
        "static iv": 4, "cluster-admin": 3, "runs as root": 3, "pull_request_target": 5, "secrets": 2,
        "is this multi-tenant query safe": 5, "safe?": 1, "refresh token": 3, "pin the": 2, "redirect_uri": 4,
        "session handling": 3, "rank the issues": 3, "prioritise the fixes": 3, "risks and what should change": 3,
    },
    "plan_irreversible": {
        "migration of our production": 5, "production": 2, "cutover": 4, "zero downtime": 4, "no downtime": 4,
        "no data loss": 4, "rollback": 3, "roll back": 3, "back out": 3, "decommission": 4, "permanently delete": 5,
        "delete": 2.5, "deletion": 3, "erasure": 4, "wire": 3, "purchase orders": 4, "bulk refund": 5,
        "refunds": 2, "2.4m users": 3, "send": 1, "kill switch": 4, "rotating the root ca": 5, "root ca": 4,
        "merge two customer databases": 5, "can't be undone": 5, "points of no return": 5, "point of no return": 5,
        "force-push": 4, "shutting down": 3, "close 1,200": 3, "dormant": 3, "legal holds": 4, "at midnight": 2,
        "mx": 3, "dns": 2, "sign-off": 2.5, "human sign-off": 4, "integrity": 2, "nothing can be lost": 5,
        "the plan and the scripts": 4, "migrate the production": 5, "sharded cluster": 3,
    },
    "strategic_analysis": {
        "options": 1.5, "offer": 1.5, "pe firm": 4, "pe offer": 4, "buyout": 4, "acquisition": 1.5,
        "expand into": 4, "expansion": 2, "exclusive": 2.5, "competitor": 2, "free tier": 2, "next 90 days": 3,
        "build its own": 3, "partner with": 2.5, "hardware-as-a-service": 4, "valuation": 1.5, "license (bsl)": 4,
        "change license": 4, "four-day week": 2.5, "centralise": 3, "raising our prices": 3, "for and against": 3,
        "invest": 2, "wait 2-3 years": 3, "stop the print": 4, "strategy": 2.5, "strategic": 3, "deficit": 3,
        "budget gap": 3, "succession": 4, "weigh": 2, "analyse the options": 4, "analyze the options": 4,
        "evaluate the trade-offs": 3, "what would you do": 2.5, "build the decision": 4, "key uncertainties": 3,
        "evaluate whether": 3, "analyse whether": 4, "analyze whether": 4, "keep growing": 3, "the right strategy": 4,
    },
}

LEAD = 14            # the opening instruction's words count double
EDGE = 60            # beyond this many words from either end, a cue counts half
_MIN_SCORE = 2.0     # below this no category is recognised


# A word: a letter or digit, then as far as letters, digits and _'/.+- go, ending on a letter, digit or
# "+" (written without backtracking: the same words as [a-z0-9][a-z0-9_'/.+-]*[a-z0-9+]|[a-z0-9]);
# or one of ```, [1], (1), ?.
_WORD = re.compile(r"[a-z0-9][a-z0-9+]*+(?:[_'/.-]+[a-z0-9+]++)*+|```|\[1\]|\(1\)|\?")


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _forms(w: str) -> tuple[str, ...]:
    """A cue word and its singular or plural (cues are indexed in both forms; the text is not normalised)."""
    if w.endswith("s") and len(w) > 4 and not w.endswith(("ss", "us", "is")):
        return (w, w[:-1])
    if w[-1:].isalpha() and len(w) > 2 and not w.endswith("s"):
        return (w, w + "s")
    return (w,)


def _build() -> tuple[dict[str, list[tuple[str, float]]], dict[tuple[str, str], list[tuple[str, float]]],
                      list[tuple[str, str, float]]]:
    uni: dict[str, list[tuple[str, float]]] = {}
    bi: dict[tuple[str, str], list[tuple[str, float]]] = {}
    longer: list[tuple[str, str, float]] = []  # phrases of 3+ words: substring tests on the text
    for cat, cues in _CUES.items():
        for cue, w in cues.items():
            ws = words_of(cue)
            if len(ws) == 1:
                for f in _forms(ws[0]):
                    uni.setdefault(f, []).append((cat, w))
            elif len(ws) == 2:
                for a in _forms(ws[0]):
                    for b in _forms(ws[1]):
                        bi.setdefault((a, b), []).append((cat, w))
            elif ws:
                longer.append((" ".join(ws), cat, w))
    # a word indexed from both its singular and its plural cue counts once, at the larger weight
    def dedupe(index: dict[Any, list[tuple[str, float]]]) -> None:
        for key, entries in index.items():
            best: dict[str, float] = {}
            for cat, w in entries:
                best[cat] = max(w, best.get(cat, 0.0))
            index[key] = list(best.items())
    dedupe(uni)
    dedupe(bi)
    return uni, bi, longer


_UNI, _BI, _LONG = _build()
_UNI_KEYS = frozenset(_UNI)
_LONG_BY: dict[str, list[tuple[str, float]]] = {}
for _p, _c, _w in _LONG:
    _LONG_BY.setdefault(_p, []).append((_c, _w))
_BI_KEYS = frozenset(_BI)


def _anchors() -> dict[str, tuple[str, ...]]:
    """Phrases of 3+ words by an interior word (the longest). An interior word of a phrase that
    occurs in the text is surrounded by spaces there, so it is one of the text's words: a phrase
    whose anchor is not among them cannot occur, and is not looked for."""
    by: dict[str, list[str]] = {}
    for phrase in sorted(_LONG_BY):
        interior = phrase.split(" ")[1:-1]
        by.setdefault(max(interior, key=len), []).append(phrase)
    return {w: tuple(ps) for w, ps in by.items()}


_ANCHOR = _anchors()
_ANCHOR_KEYS = frozenset(_ANCHOR)
_KEYS = _UNI_KEYS | _ANCHOR_KEYS


def _neighbours() -> dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """Per anchor of several phrases: the anchor with a space either side, and the words its
    phrases have just before and just after it."""
    out: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
    for w, phrases in _ANCHOR.items():
        if len(phrases) < 3:
            continue
        prevs, nexts = [], []
        for phrase in phrases:
            ws = phrase.split(" ")
            a = ws.index(w, 1)
            prevs.append(ws[a - 1])
            nexts.append(ws[a + 1] + " " if a + 2 < len(ws) else ws[a + 1])
        out[w] = (f" {w} ", tuple(prevs), tuple(nexts))
    return out


_NEIGHBOURS = _neighbours()
_SINGLE = {w: ps[0] for w, ps in _ANCHOR.items() if len(ps) == 1}


def _long_phrases(low: str, ws: Iterable[str]) -> list[str]:
    """The 3+-word phrases found in ``low``, sorted: the distinct matches of one alternation of all
    of them, longest first, scanned left to right without overlap (``re.findall``), computed from
    the few phrases whose anchor word is in the text."""
    found: list[str] = []
    contains = low.__contains__
    find, before, after = low.find, low.endswith, low.startswith
    for w in _ANCHOR_KEYS.intersection(ws):  # ws: the text's words, or those of them that are keys
        one = _SINGLE.get(w)
        if one is not None:  # the anchor of one phrase: a substring test
            if one in low:
                found.append(one)
            continue
        nb = _NEIGHBOURS.get(w)
        if nb is not None:  # an anchor of several phrases: first, does it stand between fitting words?
            spaced, prevs, nexts = nb
            j = find(spaced)
            while j >= 0 and not (before(prevs, 0, j) and after(nexts, j + len(spaced))):
                j = find(spaced, j + 1)
            if j < 0:
                continue
        found.extend(filter(contains, _ANCHOR[w]))
    if len(found) <= 1:
        return found
    occurrences = []
    for p in found:
        j = low.find(p)
        while j >= 0:
            occurrences.append((j, -len(p), p))
            j = low.find(p, j + 1)
    occurrences.sort()  # by position, the longest first where several start at one place
    out = set()
    end = 0
    for j, neg_len, p in occurrences:
        if j >= end:
            out.add(p)
            end = j - neg_len
    return sorted(out)


@dataclass(frozen=True, slots=True)
class Category:
    name: str | None          # None: nothing recognised
    confidence: float
    score: float
    runner_up: str | None
    cues: tuple[str, ...]     # the strongest cues that fired (for the reason)


FAST = frozenset(k for k, t in TIERS.items() if t == "fast")
CODE = ("generate_code", "review_code")
SHORT_OUTPUT_BOOST = 1.5   # an answer bounded by format (yes/no, one word, a label, N words) favours Haiku work
HARNESS_CODE_PRIOR = 2.5   # inside a coding-agent harness, an unlabelled instruction is most likely code work


def categorize(text: str, words: list[str] | None = None, *, short_output: bool = False,
               coding_harness: bool = False) -> Category:
    """The task category of ``text`` (already bounded by the caller). Each cue counts once (at
    double weight when it is in the opening instruction)."""
    if words is None:
        low = text.lower()
        ws = _WORD.findall(low)  # words_of(text), lowering the text once
    else:
        ws = words
        low = " ".join(ws)
    scores: dict[str, float] = {}
    best_cue: dict[str, tuple[float, str]] = {}
    get, cue_of = scores.get, best_cue.get
    n = len(ws)
    # each cue counts once, at the weight of its most prominent place: the opening instruction
    # (double), the edges (the instruction is at the start or the end), the middle of a long
    # input (half: mostly the data the instruction is about). A text of at most 2 x EDGE words is
    # all edge; of at most LEAD words, all opening instruction.
    keyed = _KEYS.intersection(ws)  # one pass over the words for both indexes
    hits = keyed.intersection(_UNI_KEYS) if keyed else keyed
    if hits:
        lead = set(ws[:LEAD]) if n > LEAD else None
        edge = None
        if n > 2 * EDGE:
            edge = set(ws[:EDGE])
            edge.update(ws[-EDGE:])
        for w in sorted(hits):  # a fixed order: the same reason whatever the process's hash seed
            if lead is None or w in lead:
                mult = 2.0
            else:
                mult = 1.0 if edge is None or w in edge else 0.5
            for cat, wt in _UNI[w]:
                v = wt * mult
                scores[cat] = get(cat, 0.0) + v
                b = cue_of(cat)
                if b is None or v > b[0]:
                    best_cue[cat] = (v, w)
    if n > 1:
        bihits = _BI_KEYS.intersection(zip(ws, ws[1:]))
        if bihits:
            lead_pairs = set(zip(ws[:LEAD], ws[1:LEAD + 1])) if n > LEAD + 1 else None
            edge_pairs = None
            if n > 2 * EDGE + 1:
                edge_pairs = set(zip(ws[:EDGE], ws[1:EDGE + 1]))
                edge_pairs.update(zip(ws[-EDGE - 1:], ws[-EDGE:]))
            for pair in sorted(bihits):
                if lead_pairs is None or pair in lead_pairs:
                    mult = 2.0
                else:
                    mult = 1.0 if edge_pairs is None or pair in edge_pairs else 0.5
                for cat, wt in _BI[pair]:
                    v = wt * mult
                    scores[cat] = get(cat, 0.0) + v
                    b = cue_of(cat)
                    if b is None or v > b[0]:
                        best_cue[cat] = (v, f"{pair[0]} {pair[1]}")
    if n >= 3:
        for phrase in _long_phrases(low, keyed):
            for cat, wt in _LONG_BY[phrase]:
                v = wt * 1.5
                scores[cat] = get(cat, 0.0) + v
                b = cue_of(cat)
                if b is None or v > b[0]:
                    best_cue[cat] = (v, phrase)
    if short_output:
        for cat in FAST:
            if cat in scores:
                scores[cat] *= SHORT_OUTPUT_BOOST
    if coding_harness and scores:
        # an instruction to a coding agent that mentions a format ("the csv exporter") is code work
        # unless the answer itself is bounded
        if not short_output:
            for cat in FAST:
                if cat in scores and cat != "simple_faq":
                    scores[cat] *= 0.5
        for cat in CODE:
            scores[cat] = get(cat, 0.0) + HARNESS_CODE_PRIOR
            best_cue.setdefault(cat, (0.0, "coding agent"))
    if not scores:
        return Category(None, 0.0, 0.0, None, ())
    if len(scores) == 1:
        (top, s1), = scores.items()
        runner, s2 = None, 0.0
    else:
        ranked = sorted([(-round(v, 6), c) for c, v in scores.items()])  # by score, then name
        top, runner = ranked[0][1], ranked[1][1]
        s1, s2 = scores[top], scores[runner]
    if s1 < _MIN_SCORE:
        return Category(None, 0.0, s1, top, ())
    confidence = round(min(0.95, 0.35 + 0.6 * (s1 - s2) / s1), 2)
    return Category(top, confidence, s1, runner, (best_cue[top][1],))


_SHORT_OUT = re.compile(
    r"\byes/no\b|\byes or no\b|\btrue or false\b|\bone word\b|\bsingle word\b|\blabel only\b|\bnumber only\b|"
    r"\bone of\b|\bone-line\b|\bone sentence\b|\bin \d+ words\b|\b\d+ words or fewer\b|\bmax \d+ words\b|"
    r"\bunder \d+ words\b|\b\d+ sentences max\b|\bas json\b|\breturn json\b|\bjson (?:object|array|list)\b|"
    r"\bas csv\b|\b[a-z_]+: ?[a-z]+/[a-z]+(?:/[a-z]+)*\b|\b[a-z]+ or [a-z]+\?|\bone per line\b|\bas a list\b|"
    r"\breply [A-Za-z_]+ or [A-Za-z_]+\b|\banswer [A-Za-z_]+ or [A-Za-z_]+\b|\breturn the (?:path|label|category)\b")
# The same alternatives, grouped by a piece of text every match of the group contains: a group's
# expression is searched only where that text occurs (the answer is whether any alternative matches,
# so the groups may be searched in any order).
_SHORT_GROUPS = tuple((needle, also, re.compile(rx)) for needle, also, rx in (
    ("json", "", r"\bas json\b|\breturn json\b|\bjson (?:object|array|list)\b"),
    ("one ", "", r"\bone word\b|\bone of\b|\bone sentence\b|\bone per line\b"),
    ("one-line", "", r"\bone-line\b"),
    (" words", "", r"\bin \d+ words\b|\bmax \d+ words\b|\bunder \d+ words\b"),
    (" only", "", r"\blabel only\b|\bnumber only\b"),
    ("single word", "", r"\bsingle word\b"),
    (" sentences max", "", r"\b\d+ sentences max\b"),
    ("as csv", "", r"\bas csv\b"),
    ("as a list", "", r"\bas a list\b"),
    ("return the ", "", r"\breturn the (?:path|label|category)\b"),
    ("yes/no", "", r"\byes/no\b"),
    ("/", ":", r"\b[a-z_]+: ?[a-z]+/[a-z]+(?:/[a-z]+)*\b"),
    (" or ", "?", r"\b[a-z]+ or [a-z]+\?"),
    (" or ", "", r"\byes or no\b|\btrue or false\b|\b\d+ words or fewer\b|"
                 r"\breply [A-Za-z_]+ or [A-Za-z_]+\b|\banswer [A-Za-z_]+ or [A-Za-z_]+\b"),
))


def _short_in(text: str, pos: int, endpos: int) -> bool:
    """``_SHORT_OUT.search(text, pos, endpos) is not None``, searching only the groups whose texts
    (``needle`` and ``also``; "" is in every text) occur."""
    part = text[pos:endpos]
    for needle, also, rx in _SHORT_GROUPS:
        if needle in part and also in part and rx.search(text, pos, endpos) is not None:
            return True
    return False


def short_output(text: str) -> bool:
    """The request bounds its answer's format (yes/no, one word, a label, N words, JSON): looked for
    where instructions are, the first 800 and the last 400 characters."""
    n = len(text)
    if n > 1200:
        return _short_in(text, 0, 800) or _short_in(text, n - 400, n)
    return _short_in(text, 0, n)
