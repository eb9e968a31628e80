"""Requests the ``prior`` router's decisions are pinned on, and the recorder of those decisions.

The decision-latency work (bench/decision_latency.py) must not change a single decision: this module
builds a fixed, deterministic set of requests from the realistic set's *dev* split and the existing
test fixtures (tests/routing/test_prior.py), decides each with the ``prior`` router, and compares
(tier, model, confidence, reasons) with the decisions recorded from main before the work started
(``data/prior_decisions.json.gz``). A deliberate behaviour change re-records them:

    .venv/bin/python tests/routing/prior_cases.py --write     # record (from the code as it is)
    .venv/bin/python tests/routing/prior_cases.py             # compare, print the differences

Cases: every dev item as its own request (no conversation state); every dev agent item with a
30,000-token system prompt; every chat prompt inside a coding-agent harness, behind a short app
system prompt, and padded past the view's bound (so the cut and the edges are exercised); the
bench's 1,000 requests in order through one stateful router; multi-task agent conversations (dev
agent tasks, tool loops, pauses past the 5-minute cache, 12k-190k-token prefixes) replayed turn by
turn with the replay's clock; the seeds' examples, the bad-input bodies, a capped and a registry-
overridden router.
"""

from __future__ import annotations

import copy
import gzip
import json
import random
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURE = HERE / "data" / "prior_decisions.json.gz"

if __name__ == "__main__":  # run as a script: the package from the worktree, the tests as a package
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT))

from tierwise import evaldata  # noqa: E402
from tierwise.config import load_settings  # noqa: E402
from tierwise.routing.base import RouteRequest, build_router  # noqa: E402

__all__ = ["decisions", "load_recorded", "compare", "FIXTURE"]


def _record(d: Any) -> dict[str, Any]:
    return {"tier": d.tier, "model": d.model, "confidence": d.confidence, "reasons": list(d.reasons)}


def _chat(prompt: str, max_tokens: int = 1024, system: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "auto", "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]}
    if system is not None:
        body["system"] = system
    return body


def _pad_prompt(prompt: str) -> str:
    """A prompt past the view's bound (3,000 characters): the instruction, a long paste, the instruction again."""
    filler = " ".join(("the", "customer", "record", "shows", "order", "42", "shipped", "on", "monday", "and")) + "\n"
    return prompt + "\n\n" + filler * 60 + "\n" + prompt


def _conversations(agents: list[Any], n: int, seed: int) -> list[list[tuple[float, dict[str, Any]]]]:
    """``n`` multi-task agent conversations: (seconds since start, body) per request."""
    rng = random.Random(seed)
    out = []
    for c in range(n):
        system_tokens = rng.choice((12_000, 30_000, 60_000, 120_000, 190_000))
        turns: list[dict[str, Any]] = []
        reqs: list[tuple[float, dict[str, Any]]] = []
        t = 0.0
        for _task in range(rng.randint(1, 4)):
            item = rng.choice(agents)
            for k, turn in enumerate(item.raw["turns"]):
                turns.append(turn)
                if turn["role"] in ("user", "tool_result"):
                    t += rng.choice((5.0, 30.0, 90.0)) if k else rng.choice((20.0, 120.0, 400.0, 900.0, 4000.0))
                    reqs.append((t, evaldata.agent_body(copy.deepcopy(turns), system_tokens=system_tokens,
                                                        session=f"fixture{c}")))
            for _loop in range(rng.randint(0, 3)):
                turns.append({"role": "assistant", "text": "Looking.", "tool": "Grep", "input": {"pattern": "x"}})
                turns.append({"role": "tool_result", "text": "src/app.py:1 " + "y " * rng.choice((50, 2000, 40_000))})
                t += 8.0
                reqs.append((t, evaldata.agent_body(copy.deepcopy(turns), system_tokens=system_tokens,
                                                    session=f"fixture{c}")))
            turns.append({"role": "assistant", "text": "Done."})
        out.append(reqs)
    return out


def _cases(settings: Any) -> Iterator[tuple[str, Callable[[], Any]]]:
    """(case id, the decision) for every pinned request, in a fixed order."""
    sys.path.insert(0, str(ROOT / "bench"))
    from decision_latency import realistic_bodies  # the bench's own 1,000 requests

    from tests.routing.test_prior import BAD, SEED_EXAMPLES

    fresh = build_router("prior", settings, sticky=False)
    items = evaldata.load("dev")
    agents = [i for i in items if i.kind == "agent"]
    app_system = "You are the assistant of ACME's internal tools. Answer the employee's request."
    for i in items:
        yield f"dev/{i.id}", lambda i=i: fresh.decide(RouteRequest(i.body()))
        if i.kind == "agent":
            yield f"dev30k/{i.id}", lambda i=i: fresh.decide(RouteRequest(i.body(system_tokens=30_000)))
        if i.kind == "chat":
            p = i.raw["prompt"]
            yield f"harness/{i.id}", lambda p=p: fresh.decide(RouteRequest(
                evaldata.agent_body([{"role": "user", "text": p}])))
            yield f"system/{i.id}", lambda p=p: fresh.decide(RouteRequest(_chat(p, system=app_system)))
            yield f"long/{i.id}", lambda p=p: fresh.decide(RouteRequest(_chat(_pad_prompt(p))))
            yield f"short/{i.id}", lambda p=p: fresh.decide(RouteRequest(_chat(p, max_tokens=200)))
    bench = build_router("prior", settings)
    bench.conversations.clock = lambda: 1000.0
    for k, b in enumerate(realistic_bodies(1000)):
        yield f"bench/{k}", lambda b=b: bench.decide(RouteRequest(b))
    now = [0.0]
    conv = build_router("prior", settings)
    conv.conversations.clock = lambda: now[0]
    for c, reqs in enumerate(_conversations(agents, 30, 11)):
        for k, (t, b) in enumerate(reqs):
            def run(t=t + 100_000.0 * c, b=b):
                now[0] = t
                return conv.decide(RouteRequest(b))
            yield f"conv/{c}/{k}", run
    for k, (prompt, _tier, _why) in enumerate(SEED_EXAMPLES):
        yield f"seeds/{k}", lambda p=prompt: fresh.decide(RouteRequest.from_prompt(p))
    for k, body in enumerate(BAD):
        yield f"bad/{k}", lambda body=body: fresh.decide(RouteRequest(dict(body, model="auto")))
        yield f"bad-agent/{k}", lambda body=body: fresh.decide(RouteRequest(dict(
            body, model="auto", tools=evaldata.harness()["tools"], system=evaldata.harness()["system"])))
    capped = build_router("prior", settings, sticky=False, max_tier="balanced")
    registry = build_router("prior", load_settings(None, environ={}, overrides={
        "registry": {"classify_intent": "balanced", "legal_analysis": "balanced"}}), sticky=False)
    uncertain = build_router("prior", settings, sticky=False, min_confidence=0.6)
    for i in items[::3]:
        yield f"capped/{i.id}", lambda i=i: capped.decide(RouteRequest(i.body()))
        yield f"registry/{i.id}", lambda i=i: registry.decide(RouteRequest(i.body()))
        yield f"uncertain/{i.id}", lambda i=i: uncertain.decide(RouteRequest(i.body()))
    # long documents (past 100k tokens) and a mid-tool-loop turn that needs more than the conversation's model
    doc = "Report section. " * 30_000
    for k, ask in enumerate(("Summarise these documents: ", "Using the excerpts below, answer: what changed? ",
                             "Review this code: ", "Explain this concept: ")):
        yield f"longdoc/{k}", lambda ask=ask: fresh.decide(RouteRequest(_chat(ask + doc)))
    for k, (i, j) in enumerate(zip(agents, reversed(agents))):
        loop = build_router("prior", settings)
        loop.conversations.clock = lambda: 5000.0
        first = [dict(t) for t in i.raw["turns"] if t["role"] == "user"][:1]
        hard = {"role": "user", "text": j.raw["turns"][0]["text"]}
        tool = {"role": "assistant", "text": "grep", "tool": "Grep", "input": {"pattern": "lock"}}
        result = {"role": "tool_result", "text": "billing/worker.py:12 with lock:"}
        yield f"loop/{k}/0", lambda loop=loop, first=first, k=k: loop.decide(RouteRequest(
            evaldata.agent_body(first, session=f"loop{k}")))
        yield f"loop/{k}/1", lambda loop=loop, first=first, hard=hard, tool=tool, result=result, k=k: loop.decide(
            RouteRequest(evaldata.agent_body(first + [{"role": "assistant", "text": "ok"}, hard, tool, result],
                                             session=f"loop{k}")))


def decisions() -> dict[str, dict[str, Any]]:
    settings = load_settings(None, environ={})
    return {case: _record(fn()) for case, fn in _cases(settings)}


def load_recorded() -> dict[str, dict[str, Any]]:
    return json.loads(gzip.decompress(FIXTURE.read_bytes()))


def compare(now: dict[str, dict[str, Any]], recorded: dict[str, dict[str, Any]]) -> list[str]:
    """Human-readable differences (empty: identical)."""
    out = []
    for case in sorted(set(now) | set(recorded)):
        a, b = recorded.get(case), now.get(case)
        if a != b:
            out.append(f"{case}:\n  recorded {a}\n  now      {b}")
    return out


def main() -> int:
    now = decisions()
    if "--write" in sys.argv:
        FIXTURE.parent.mkdir(exist_ok=True)
        FIXTURE.write_bytes(gzip.compress(json.dumps(now, sort_keys=True, indent=0).encode(), mtime=0))
        print(f"recorded {len(now)} decisions in {FIXTURE.relative_to(ROOT)}")
        return 0
    diff = compare(now, load_recorded())
    print("\n".join(diff[:20]))
    print(f"{len(now)} decisions, {len(diff)} differ from the recorded ones")
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
