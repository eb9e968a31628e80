"""The ``prior`` strategy (auto's default): the seeds' own examples, the issue's examples, agent
requests, conversations and their cache, bad input."""

from __future__ import annotations

import pytest

from tierwise import evaldata
from tierwise.config import load_settings
from tierwise.errors import ConfigError
from tierwise.routing.base import RouteRequest, build_router
from tierwise.routing.prior import PriorRouter
from tierwise.routing.view import view_of


@pytest.fixture(scope="module")
def settings():
    return load_settings(None, environ={})


@pytest.fixture()
def router(settings):
    return build_router("prior", settings)


def decide(router, prompt: str, **extra):
    return router.decide(RouteRequest.from_prompt(prompt, **extra))


# The seeds' examples (/work/shared/seeds): the tier each article argues for, and the reason it gives.
SEED_EXAMPLES = [
    # 002: "Intent classification / routing | Haiku | Prompt is short, output is a category label"
    ("Classify the user's intent as one of: billing, shipping, returns, other. Message: where is my parcel?",
     "fast", "classification"),
    # 002: "Entity extraction | Haiku | Structured output from constrained fields"
    ("Extract the customer name, order id and date as JSON: 'Hi, this is Ana Ruiz, order 88121 from 2 May'",
     "fast", "extraction"),
    # 002: "Simple summarization (bullet points, headlines) | Haiku"
    ("Write a headline for this paragraph: The council approved the new park on Tuesday after a 6-1 vote.",
     "fast", "headline"),
    # 003: "determining if a support ticket needs human escalation"
    ("Triage this support ticket: does it need a human agent? 'I was charged twice and your bot keeps looping'",
     "fast", "triage"),
    # 000: "Content moderation: Classifying content at high throughput"
    ("Moderation: is this comment harassment? yes/no - 'nobody asked for your opinion, loser'", "fast", "moderation"),
    # 002: "Code review / debugging | Sonnet | Requires understanding intent"
    ("Review this function for bugs:\n```python\ndef pct(a, b):\n    return a / b * 100\n```", "balanced", "code review"),
    # 002: "Long-form content drafting (1,000+ words) | Sonnet"
    ("Write a 1,500-word blog post about onboarding remote engineers, with a checklist at the end.", "balanced",
     "long-form"),
    # 002: "Multi-step planning / agent reasoning | Sonnet"
    ("You are an agent with tools search_docs and create_ticket. Plan the steps to triage 40 bug reports and file "
     "tickets for the real ones.", "balanced", "agent step planning"),
    # 002 registry: draft_email -> Sonnet
    ("Draft an email to a customer apologising for a late delivery and offering a discount.", "balanced", "email"),
    # 000: "Legal document analysis: interpreting contract clauses, identifying conflicting terms"
    ("Clause 9.1 caps liability at fees paid; clause 14 makes the indemnity uncapped; the order-of-precedence "
     "clause puts the SOW first. Which clause governs a data-breach claim?", "deep", "legal"),
    # 001: "here are forty pages of contract language, find me the clause that contradicts this other clause"
    ("Here are forty pages of contract language. Find the clause that contradicts the termination clause on "
     "page thirty-two and explain the consequences.", "deep", "legal"),
    # 000: "Financial modeling and analysis: Reasoning through multi-variable financial scenarios"
    ("Build a 5-year DCF: revenue $12M growing 30% falling to 8%, EBITDA margin 15% rising to 28%, capex 4% of "
     "revenue, WACC 10%, terminal growth 2.5%. What's the enterprise value and its sensitivity to WACC?",
     "deep", "financial modelling"),
    # 003: "architectural decisions, bug analysis across large codebases"
    ("Should we split our monolith into microservices? 300k lines, 9 teams, one shared Postgres. Propose the "
     "boundaries and the order.", "deep", "architecture"),
    ("Intermittent duplicate orders happen only during deploys across our API, Celery workers and RabbitMQ. Walk "
     "through the likely causes and how to prove which one.", "deep", "debugging"),
    # 000: "Research synthesis: Drawing coherent conclusions from multiple lengthy papers ... conflicting findings"
    ("Three studies disagree on whether remote work raises productivity: reconcile their findings and say what "
     "the evidence supports.", "deep", "synthesis"),
    # 002: "Use Opus for plans with irreversible consequences (spend, send, delete)"
    ("Plan the permanent deletion of all inactive customer accounts across production databases and backups, "
     "with rollback points.", "deep", "irreversible"),
    # 002: "Use Opus only for security-critical reviews"
    ("Security review of our password reset flow: 6-digit codes, 30-minute expiry, no lockout. What can an "
     "attacker do?", "deep", "security"),
]


@pytest.mark.parametrize("prompt,tier,why", SEED_EXAMPLES)
def test_the_seeds_examples_get_the_seeds_tier_with_a_true_reason(router, prompt, tier, why):
    d = decide(router, prompt)
    assert d.tier == tier, d.reasons
    assert why in d.reasons[0], d.reasons
    assert d.router == "prior" and d.model == router.catalog.model_for_tier(tier).id


def test_the_issue_examples(router):
    # a 5-year DCF is Opus work, and the reason says so (not "multi-step math word problem")
    d = decide(router, "Build a 5-year DCF for a company with revenue of $40M, 12% growth, 20% margins, 25% tax, "
                       "9% WACC and 2% terminal growth, and show the sensitivity to WACC and growth.")
    assert d.tier == "deep" and "financial modelling" in d.reasons[0]
    assert not any("math word problem" in r for r in d.reasons)
    # a lease break-clause question: deep, with a true reason
    d = decide(router, "Can we exercise the break clause in our lease if the landlord says unpaid service charge "
                       "counts as rent arrears?")
    assert d.tier == "deep" and "contract or legal" in d.reasons[0]
    # a number-heavy but easy prompt is not a "math" problem
    d = decide(router, "Extract the order id, the amount and the date: 'Order 55231 for $120.50 on 2025-03-04, "
                       "3 items, ref 99812'")
    assert d.tier == "fast"


def claude_code(text: str, **kw) -> dict:
    return evaldata.agent_body([{"role": "user", "text": text}], **kw)


def test_claude_code_say_hi_is_routed_on_the_turn_not_the_harness(router):
    body = claude_code("say hi", system_tokens=30_000)
    d = router.decide(RouteRequest(body))
    assert d.tier == "fast", d.reasons
    assert any("harness system prompt and 25 tools set aside" in r for r in d.reasons)
    assert not any("complexity" in r for r in d.reasons)
    # the task at hand decides: a hard turn in the same harness goes deep
    d = router.decide(RouteRequest(claude_code("we see duplicate charges once a day across api/payments and the "
                                               "billing worker; find the root cause across the codebase")))
    assert d.tier == "deep"


def test_side_requests_go_to_the_fast_tier(router):
    for system, prompt, mt in (
            ("Generate a concise, sentence-case title (3-7 words) for this coding session.", "fix the flaky test", 512),
            ("Summarize what was accomplished in this session in one sentence.", "ran tests, fixed 3 lint errors", 200),
            ("Your task is to process Bash commands. Determine the command prefix.", "Command: git status", 64)):
        body = {"model": "auto", "max_tokens": mt, "system": [{"type": "text", "text": system}],
                "messages": [{"role": "user", "content": prompt}]}
        d = router.decide(RouteRequest(body))
        assert d.tier == "fast" and "harness side request" in d.reasons[0]
    quota = {"model": "auto", "max_tokens": 1, "messages": [{"role": "user", "content": "quota"}]}
    assert router.decide(RouteRequest(quota)).tier == "fast"


def test_a_tool_result_turn_is_routed_on_the_task_it_continues(router):
    body = evaldata.agent_body([
        {"role": "user", "text": "do a security review of the OAuth callback and the session middleware"},
        {"role": "assistant", "text": "Reading.", "tool": "Read", "input": {"file_path": "auth/callback.py"}},
        {"role": "tool_result", "text": "def callback(request):\n    return redirect(request.args['next'])\n"}])
    v = view_of(body)
    assert v.continuation and v.tool_results == 1 and "security review" in v.user
    assert router.decide(RouteRequest(body)).tier == "deep"


def test_the_view_is_bounded(settings):
    huge = "x" * 2_000_000
    body = {"model": "auto", "max_tokens": 10, "system": huge,
            "tools": [{"name": f"t{i}", "description": "d" * 5000, "input_schema": {}} for i in range(2000)],
            "messages": [{"role": "user", "content": "classify the sentiment: 'great stuff' (positive/negative)"}]}
    v = view_of(body)
    assert v.harness and "x" not in v.task and v.prompt_tokens > 500_000
    long_user = {"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": "summarise: " + huge}]}
    assert len(view_of(long_user).task) < 4000
    assert build_router("prior", settings).decide(RouteRequest(body)).tier == "fast"


BAD = [
    {"messages": [{"role": "user", "content": ""}]},
    {"messages": [{"role": "user", "content": []}]},
    {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                            "data": "AAAA"}}]}]},
    {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}]},
    {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": []}]}]},
    {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]},
    {"messages": [{"role": "wizard", "content": "abracadabra"}]},
    {"messages": [{"role": "user", "content": None}]},
    {"messages": ["not a message", 3, None]},
    {"messages": "nope"},
    {},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": None}, {"type": "text"}, "loose string"]}],
     "system": [{"type": "text", "text": None}, "odd"], "tools": "not a list", "max_tokens": "many"},
    {"messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": "...", "signature": "s"}]}]},
]


@pytest.mark.parametrize("body", BAD)
def test_bad_input_gets_a_decision_with_a_reason(router, body):
    d = router.decide(RouteRequest(dict(body, model="auto")))
    assert d.tier in router.catalog.tiers and d.reasons and all(isinstance(r, str) and r for r in d.reasons)


def test_role_system_messages_are_noted(router):
    d = router.decide(RouteRequest({"model": "auto", "max_tokens": 100, "messages": [
        {"role": "user", "content": "Extract the dates as JSON: 'we met on 3 May and again on 9 June'"},
        {"role": "system", "content": "the user prefers ISO dates"}]}))
    assert d.tier == "fast" and any("role(s) system" in r for r in d.reasons)


def test_registry_outcomes_override_the_seeds(tmp_path):
    s = load_settings(None, environ={}, overrides={"registry": {"classify_intent": "balanced"}})
    d = build_router("prior", s).decide(RouteRequest.from_prompt(
        "Classify the intent of this message as one of: billing, cancel, other. 'charged twice??'"))
    assert d.tier == "balanced" and "(registry)" in d.reasons[0]


def test_options_are_validated(settings):
    with pytest.raises(ConfigError, match="unknown option"):
        PriorRouter(settings, tolerance=0.3)
    with pytest.raises(ConfigError, match="unknown tier"):
        PriorRouter(settings, tiers={"legal_analysis": "platinum"})
    with pytest.raises(ConfigError, match="max_tier"):
        PriorRouter(settings, max_tier="nope")
    capped = PriorRouter(settings, max_tier="balanced")
    d = decide(capped, SEED_EXAMPLES[9][0])
    assert d.tier == "balanced" and any("capped at balanced" in r for r in d.reasons)


def test_learned_escalation_only_moves_up_and_only_when_uncertain(settings):
    r = PriorRouter(settings, learned=False)
    r._learned = lambda req: 2   # "the cheap tier's predicted score is very low"
    r.learned_below = 1.01       # consult it always
    d = decide(r, "Extract the invoice number: INV-7781")
    assert d.tier == "deep" and any("learned" in x and "harder" in x for x in d.reasons)
    r._learned = lambda req: 0   # "easy": never lowers the prior
    assert decide(r, SEED_EXAMPLES[9][0]).tier == "deep"
    r.learned_below = 0.0        # the default's rule: only below the category confidence
    r._learned = lambda req: 2
    assert decide(r, "Extract the invoice number: INV-7781").tier == "fast"


# -- conversations ------------------------------------------------------------------
def turn(history: list[dict], text: str | None = None, *, result: str | None = None, system_tokens: int = 0) -> dict:
    turns = list(history)
    if text is not None:
        turns.append({"role": "user", "text": text})
    if result is not None:
        turns.append({"role": "tool_result", "text": result})
    return evaldata.agent_body(turns, system_tokens=system_tokens, session="conv-test")


def test_a_conversation_stays_unless_a_move_pays(settings):
    r = build_router("prior", settings)
    clock = [1000.0]
    r.conversations.clock = lambda: clock[0]
    hist = [{"role": "user", "text": "refactor the three API handlers to share one validation helper"}]
    first = r.decide(RouteRequest(turn([], hist[0]["text"], system_tokens=190_000)))
    assert first.tier == "balanced"
    hist += [{"role": "assistant", "text": "done " * 300, "tool": "Edit", "input": {"file_path": "a.py"}},
             {"role": "tool_result", "text": "y " * 20_000}, {"role": "assistant", "text": "Refactored."}]
    clock[0] += 30
    # a trivial follow-up on a 200k warm cache: the move to Haiku re-writes it all at Haiku's long-context
    # write price, more than reading it on Sonnet: stay
    d = r.decide(RouteRequest(turn(hist, "thanks, that's all", system_tokens=190_000)))
    assert d.model == first.model and any("stays on" in x and "does not pay" in x for x in d.reasons)
    # the same follow-up after the cache went cold (> 5 minutes): moving is free of re-write, it pays
    clock[0] += 600
    d = r.decide(RouteRequest(turn(hist, "thanks, that's all", system_tokens=190_000)))
    assert d.tier == "fast" and any("cache is cold" in x for x in d.reasons) and any(" pays:" in x for x in d.reasons)


def test_a_move_up_waits_for_the_user_turn(settings):
    r = build_router("prior", settings)
    hist = [{"role": "user", "text": "say hi"}]
    assert r.decide(RouteRequest(turn([], "say hi"))).tier == "fast"
    hist.append({"role": "assistant", "text": "hi!"})
    hard = "find the root cause of the intermittent deadlocks across the billing worker and the API"
    d = r.decide(RouteRequest(turn(hist, hard)))
    assert d.tier == "deep" and any("moves up for capability" in x for x in d.reasons)
    # mid tool loop, a turn that needs more than the conversation's model stays until the next user turn
    r2 = build_router("prior", settings)
    r2.decide(RouteRequest(turn([], "say hi")))
    loop = hist + [{"role": "user", "text": hard}, {"role": "assistant", "text": "grep", "tool": "Grep",
                                                    "input": {"pattern": "lock"}}]
    d = r2.decide(RouteRequest(turn(loop, result="billing/worker.py:12 with lock:")))
    assert d.tier == "fast" and any("mid tool loop" in x for x in d.reasons)


def test_naive_mode_has_no_state(settings):
    r = build_router("prior", settings, sticky=False)
    assert r.conversations is None
    assert r.decide(RouteRequest(turn([{"role": "user", "text": "say hi"}, {"role": "assistant", "text": "hi"}],
                                      "thanks"))).tier == "fast"


def test_a_conversation_moves_up_to_deep_only_for_a_confident_deep_task(settings):
    hard = "find the root cause of the intermittent deadlocks across the billing worker and the API"
    hist = [{"role": "user", "text": "say hi"}, {"role": "assistant", "text": "hi!"}]
    for threshold, tier in ((0.0, "deep"), (0.99, "balanced")):
        r = build_router("prior", settings, deep_confidence=threshold)
        r.decide(RouteRequest(turn([], "say hi")))
        d = r.decide(RouteRequest(turn(hist, hard)))
        assert d.tier == tier and any("moves up for capability" in x for x in d.reasons)
        assert any("deep task uncertain" in x for x in d.reasons) == (tier != "deep")
    # a conversation's first turn is no move: the deep task goes deep whatever the option
    assert build_router("prior", settings, deep_confidence=0.99).decide(RouteRequest(turn([], hard))).tier == "deep"


def test_a_move_down_to_the_fast_tier_is_priced_over_the_task_at_hand(settings):
    r = build_router("prior", settings)
    hist = []
    for k in range(12):  # a long conversation on the balanced tier
        hist += [{"role": "user", "text": f"refactor handler {k} to share one validation helper"},
                 {"role": "assistant", "text": "done " * 50}]
    r.decide(RouteRequest(turn([], hist[0]["text"], system_tokens=20_000)))
    d = r.decide(RouteRequest(turn(hist, "thanks, that's all", system_tokens=20_000)))
    # 12 turns so far would price a stay over 6 more; a quick fast task is priced over horizon_turns (3)
    assert any("3 turn(s)" in x for x in d.reasons), d.reasons


def test_a_compaction_is_priced_over_itself_alone(settings):
    """Claude Code's compaction sends the whole conversation and asks for a summary of it; the conversation
    then goes on from the summary (another prefix), so a move would re-write the whole cache for that one
    request: on a 126k-token Opus conversation it stays, where an ordinary balanced task moves to Sonnet."""
    compact = ("Your task is to create a detailed summary of the conversation so far, paying close attention to "
               "the user's explicit requests and your previous actions.")
    hard = "find the root cause of the intermittent deadlocks across the billing worker and the API"
    out = {}
    for follow in (compact, "now add an endpoint that lists the archived projects"):
        r = build_router("prior", settings)
        clock = [1000.0]
        r.conversations.clock = lambda c=clock: c[0]
        hist = [{"role": "user", "text": hard}]
        assert r.decide(RouteRequest(turn([], hard, system_tokens=20_000))).tier == "deep"
        for k in range(20):
            hist += [{"role": "assistant", "text": "look " * 100, "tool": "Read", "input": {"file_path": f"m{k}.py"}},
                     {"role": "tool_result", "text": "code " * 4000}]
            clock[0] += 10
            r.decide(RouteRequest(turn(hist[:-1], result=hist[-1]["text"], system_tokens=20_000)))
        clock[0] += 30
        out[follow] = r.decide(RouteRequest(turn(hist + [{"role": "assistant", "text": "Found it."}], follow,
                                                 system_tokens=20_000)))
    d = out[compact]
    assert d.model == "claude-opus-5-5" and any("compaction" in x for x in d.reasons)
    assert any("1 turn(s)" in x and "does not pay" in x for x in d.reasons)
    other = next(v for k, v in out.items() if k != compact)
    assert other.model == "claude-sonnet-5-5" and not any("compaction" in x for x in other.reasons)
