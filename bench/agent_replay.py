#!/usr/bin/env python
"""Agent replay: Claude Code-style conversations under always-Sonnet, naive per-turn routing and tierwise.

24 multi-turn coding-agent conversations are generated (seeded): the harness of
``tierwise.evaldata`` (3 cached system blocks, 25 tools) padded to a 12k-40k-token prefix, 1-5
human tasks drawn from the realistic set's agent rows in the seeds' traffic mix (``TASK_MIX``: 30 % fast,
60 % balanced, 10 % deep; the row's label is the tier the task needs),
each followed by 0-6 tool loops (tool results of 200-12,000 tokens, some file reads far larger, so
some conversations pass 100k and 200k prompt tokens), human pauses of 20 s to 15 min (so some
5-minute caches expire), and the harness's side requests (a title at the start, sometimes a
summary; a topic check per user message, a command-prefix check per Bash call, as Claude Code
sends them). Every request carries Claude Code's breakpoints (system blocks and the last block of the
last message, 5 minutes). Each request goes to the model a policy picks and is priced with the
catalog's exact prices on the usage :class:`tierwise.cachesim.CacheSim` gives it (per-model
prefix caches, 5m/1h lifetimes refreshed on read, 512-token minimum on the 5.5 models,
20-block lookback).

Policies: **always-Sonnet** (every request on the balanced tier), the **label oracle** (every
request on the tier its task needs: the price of serving the labels, for reference), **naive per-turn** (the
``prior`` router without conversation state: each request routed on its own), **tierwise** (the
``prior`` router as ``auto`` runs it: conversation state, moves priced from the cache). Printed:
total cost, model switches inside conversations, cache hit rate (cache reads / prompt tokens), and
for tierwise each switch classified: moves up for capability (a task that needs a higher tier; their
extra cost shown) and moves down for cost, each re-simulated against staying on the old model
until the next switch (a move down that cost more than staying "did not pay"). Targets: tierwise
costs no more than always-Sonnet and less than naive per-turn, zero moves down that did not pay.

``--breakdown`` sets tierwise against the label oracle per conversation, per request (each task's
split and type; the text only for dev rows) and by the tier each task needs. ``--tasks dev`` draws the
tasks from the realistic set's dev rows only: the conversations to build on (a change is never chosen
on test rows). ``--own-system`` (a sensitivity) gives each conversation a system prompt of its own, so
conversations share only the harness's static prefix in the cache. ``bench/replay_bound.py`` searches,
with hindsight, for the cheapest assignment at the oracle's quality on the same replay.

    .venv/bin/python bench/agent_replay.py [--conversations 24] [--seed 7] [-v] [--breakdown] [--tasks all|dev]
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tierwise import evaldata
from tierwise.cachesim import CacheSim, blocks_of
from tierwise.config import load_settings
from tierwise.cost import Usage
from tierwise.cost import price as catalog_price
from tierwise.routing.base import RouteRequest, build_router

TOOLS = ("Read", "Bash", "Grep", "Edit", "Glob", "Bash", "Read")
# the human tasks' mix: the seeds' split of production traffic (Opus for "typically 5-15%" of requests,
# most on Sonnet, Haiku for the simple ones); each task is one of the realistic set's agent rows of that tier
TASK_MIX = {"fast": 0.30, "balanced": 0.60, "deep": 0.10}
TOPIC = ("Analyze if this message indicates a new conversation topic. If it does, extract a 2-3 word title that "
         "captures the new topic. Format your response as a JSON object with two fields: 'isNewTopic' (boolean) and "
         "'title' (string, or null if isNewTopic is false).")


@dataclass
class Req:
    conv: int
    t: float
    body: dict[str, Any]
    output_tokens: int
    side: bool = False
    need: str | None = None    # the tier the task at hand needs (the realistic set's label)
    split: str | None = None   # the split of the realistic row the task at hand came from (None: a side request's own text)
    task: int = 0              # which human task of its conversation the request belongs to (0, 1, ...)
    kind: str = ""             # the realistic row's task type (agent requests)


@dataclass
class Result:
    name: str
    cost_nanos: int = 0
    switches: int = 0
    prompt_tokens: int = 0
    read_tokens: int = 0
    write_tokens: int = 0
    requests: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    up: list[tuple[int, int]] = field(default_factory=list)     # (conversation, index) of moves up
    down: list[tuple[int, int]] = field(default_factory=list)   # ... moves down
    decisions: list[tuple[Req, str, tuple[str, ...]]] = field(default_factory=list)
    costs: list[int] = field(default_factory=list)              # nano-USD of each decision, in the same order


def _filler(tokens: int, rng: random.Random) -> str:
    words = ("def", "return", "self", "value", "config", "import", "request", "result", "error", "test", "data", "path")
    out = []
    n = 0
    while n < tokens * 4:
        w = rng.choice(words)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


_TITLE = "Generate a concise, sentence-case title (3-7 words) for this coding session. Return JSON {\"title\": ...}."
_SUMMARY = "Summarize what was accomplished in this session in one sentence for the status line."


def _side(instruction: str, text: str, max_tokens: int, meta: dict[str, str]) -> dict[str, Any]:
    """A harness side request: no tools, a small ``max_tokens``, the instruction in the system prompt."""
    return {"model": "auto", "max_tokens": max_tokens,
            "system": [{"type": "text", "text": "You are a coding agent's helper."}, {"type": "text", "text": instruction}],
            "messages": [{"role": "user", "content": text}], "metadata": meta}


def _with_breakpoint(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last = dict(messages[-1])
    content = list(last["content"])
    content[-1] = {**content[-1], "cache_control": {"type": "ephemeral"}}
    last["content"] = content
    return messages[:-1] + [last]


def task_rows(tasks: str = "all") -> list[evaldata.Item]:
    """The realistic set's agent rows the human tasks are drawn from: ``all`` (dev and test, for the
    reported figures) or ``dev`` only (for building: nothing that chooses a router change may look at
    test rows)."""
    rows = evaldata.load("dev")
    if tasks == "all":
        rows += evaldata.load("test", for_report=True)
    elif tasks != "dev":
        raise ValueError(f"tasks must be 'all' or 'dev', got {tasks!r}")
    return [i for i in rows if i.kind == "agent"]


def conversations(n: int, seed: int, tasks: str = "all", own_system: bool = False) -> list[list[Req]]:
    """``own_system``: each conversation's padded system block carries a line of its own (as Claude Code's
    environment block differs per session), so conversations share only the harness's static prefix in
    the cache; by default conversations of one prefix size share the whole system prompt (one repository)."""
    rng = random.Random(seed)
    rows = task_rows(tasks)
    split = {i.raw["turns"][0]["text"]: i.split for i in rows}
    kind = {i.raw["turns"][0]["text"]: i.task_type for i in rows}
    pool = sorted((i.raw["turns"][0]["text"], i.tier) for i in rows)
    by_tier = {t: [x for x in pool if x[1] == t] for t in TASK_MIX}
    prefix_policy = "Your task is to process Bash commands that an AI coding agent wants to run. Determine the command " \
                    "prefix. If the command contains command injection, return command_injection_detected. Respond with " \
                    "the prefix only.\n<policy_spec>\n" + _filler(1500, random.Random(1)) + "\n</policy_spec>"
    convs: list[list[Req]] = []
    for c in range(n):
        prefix_tokens = rng.choice((12_000, 16_000, 20_000, 30_000, 40_000))
        base = evaldata.agent_body([{"role": "user", "text": "x"}], system_tokens=prefix_tokens, session=f"replay{c}")
        system, tools = base["system"], base["tools"]
        if own_system:
            system = system[:2] + [{**system[2], "text": system[2]["text"] + f"\nSession: {seed}-{c}"}]
        meta = {"user_id": f"user_replay_account__session_{seed}_{c}"}
        t = 0.0
        reqs: list[Req] = []
        msgs: list[dict[str, Any]] = []
        n_tasks = rng.randint(1, 5)
        # every third conversation: a big file read or log dump somewhere (long context)
        big = c % 3 == 0
        first_text = None
        for k in range(n_tasks):
            start = len(reqs)
            tier = rng.choices(list(TASK_MIX), weights=list(TASK_MIX.values()))[0]
            text, _ = rng.choice(by_tier[tier])
            # the harness checks each new user message for a new topic (a side request)
            reqs.append(Req(c, t, {"model": "auto", "max_tokens": 512, "metadata": meta,
                                   "system": [{"type": "text", "text": "You are a coding agent's helper."},
                                              {"type": "text", "text": TOPIC}],
                                   "messages": [{"role": "user", "content": text}]}, 20, side=True, need="fast",
                            split=split[text]))
            if first_text is None:
                first_text = text
            msgs.append({"role": "user", "content": [{"type": "text", "text": text}]})
            loops = rng.randint(0, 6) if tier != "fast" else rng.randint(0, 1)
            for step in range(loops + 1):
                out = rng.randint(80, 400) if step < loops else rng.randint(150, 1200)
                body = {"model": "auto", "max_tokens": 32000, "stream": True, "system": system, "tools": tools,
                        "messages": _with_breakpoint(msgs), "metadata": meta, "output_config": {"effort": "high"}}
                reqs.append(Req(c, t, body, out, need=tier, split=split[text], kind=kind[text]))
                t += rng.uniform(2, 20)
                reply: list[dict[str, Any]] = [{"type": "text", "text": _filler(out, rng)}]
                if step < loops:
                    tool = rng.choice(TOOLS)
                    if tool == "Bash":  # the harness asks for the command's prefix before running it
                        reqs.append(Req(c, t, {"model": "auto", "max_tokens": 128, "metadata": meta,
                                               "system": [{"type": "text", "text": "You are a coding agent's helper."},
                                                          {"type": "text", "text": prefix_policy, "cache_control": {"type": "ephemeral"}}],
                                               "messages": [{"role": "user", "content": f"Command: pytest tests/m{rng.randint(1, 99)} -q"}]},
                                        8, side=True, need="fast"))
                    reply.append({"type": "tool_use", "id": f"toolu_r{c}_{k}_{step}", "name": tool,
                                  "input": {"command" if tool == "Bash" else "file_path": f"src/m{rng.randint(1, 99)}.py"}})
                msgs.append({"role": "assistant", "content": reply})
                if step < loops:
                    size = rng.randint(200, 12_000)
                    if big and rng.random() < 0.35:
                        size = rng.randint(40_000, 90_000)
                    msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_r{c}_{k}_{step}",
                                                              "content": _filler(size, rng)}]})
            if k == 0:  # the harness asks for a title after the first exchange
                reqs.append(Req(c, t, _side(_TITLE, first_text or text, 512, meta), 12, side=True, need="fast"))
            if k == n_tasks - 1 and rng.random() < 0.5:
                reqs.append(Req(c, t + 1, _side(_SUMMARY, _filler(600, rng), 300, meta), 40, side=True, need="fast"))
            for r in reqs[start:]:
                r.task = k
            t += rng.choice((20, 45, 90, 200, 420, 900))  # the human's pause (some beyond 5 minutes)
        convs.append(reqs)
    return convs


def price(catalog, model_id: str, acc, output_tokens: int) -> int:
    usage = Usage(input_tokens=acc.input_tokens, output_tokens=output_tokens,
                  cache_write_5m_tokens=acc.cache_write_5m_tokens, cache_write_1h_tokens=acc.cache_write_1h_tokens,
                  cache_read_tokens=acc.cache_read_tokens)
    nanos = catalog_price(catalog, model_id, usage, day=None)  # the one place tierwise prices a call
    if nanos is None:
        raise KeyError(f"{model_id} is not in the catalog")
    return nanos


def _task_text(r: Req) -> str:
    for m in reversed(r.body["messages"]):
        if m["role"] == "user":
            content = m["content"]
            if isinstance(content, str):
                return content
            texts = [b["text"] for b in content if b.get("type") == "text"]
            if texts:
                return texts[-1]
    return ""


def breakdown(a: Result, b: Result, ref: Result) -> None:
    """Where policy ``a`` costs more or less than ``b``: per conversation (with ``ref`` beside), then the
    requests ``a`` put on another model than ``b`` (their task's split and type; text only for dev rows:
    test rows are for reporting, never for choosing a change), then the difference by task type."""
    print(f"\n{a.name} against {b.name}, per conversation ({ref.name} beside):")
    convs = sorted({r.conv for r, _, _ in a.decisions})
    per = {c: [0, 0, 0] for c in convs}
    for res, i in ((a, 0), (b, 1), (ref, 2)):
        for (r, _, _), cost in zip(res.decisions, res.costs):
            per[r.conv][i] += cost
    for c in convs:
        x, y, z = per[c]
        if x != y:
            print(f"  conv {c:2d}: ${x / 1e9:.4f} vs ${y / 1e9:.4f} ({(x - y) / 1e9:+.4f}); {ref.name} ${z / 1e9:.4f}")
    moved = same = 0
    by_type: dict[tuple[str, str], list[int]] = {}
    print(f"  requests {a.name} put on another model than {b.name}:")
    for (r, ma, reasons), ca, (_, mb, _), cb in zip(a.decisions, a.costs, b.decisions, b.costs):
        if ma == mb:
            same += ca - cb
            continue
        moved += ca - cb
        key = (r.split or "-", r.kind or "side")
        by_type.setdefault(key, [0, 0])
        by_type[key][0] += 1
        by_type[key][1] += ca - cb
        text = repr(_task_text(r)[:50]) if r.split == "dev" else "(test row)"
        why = reasons[0][:70] if reasons and not r.side else ""
        print(f"    conv {r.conv:2d} task {r.task} t={r.t:6.0f}s need {r.need:<8} {ma.replace('claude-', ''):<14} vs "
              f"{mb.replace('claude-', ''):<14} {(ca - cb) / 1e9:+.4f}  [{r.split} {r.kind or 'side'}] {text} {why}")
    print(f"  difference: {(a.cost_nanos - b.cost_nanos) / 1e9:+.4f} = {moved / 1e9:+.4f} on those requests "
          f"+ {same / 1e9:+.4f} on requests both put on the same model (other cache states)")
    for (sp, kind), (n, d) in sorted(by_type.items(), key=lambda kv: kv[1][1]):
        print(f"    {sp:<5} {kind:<14} {n:3d} request(s) {d / 1e9:+.4f}")
    print("  cost by the tier the request's task needs (side requests apart):")
    for res in (ref, b, a):
        parts: dict[str, int] = {}
        for (r, _, _), cost in zip(res.decisions, res.costs):
            key = "side" if r.side else str(r.need)
            parts[key] = parts.get(key, 0) + cost
        print(f"    {res.name:<36}" + "  ".join(f"{k} ${parts.get(k, 0) / 1e9:.4f}"
                                            for k in ("fast", "balanced", "deep", "side")))


def run(name: str, pick, convs: list[list[Req]], catalog) -> Result:
    """``pick(req) -> (model id, reasons)``; requests of all conversations interleaved by time."""
    res = Result(name)
    sim = CacheSim()
    events = sorted((r for conv in convs for r in conv), key=lambda r: (r.t, r.conv))
    last_model: dict[int, str] = {}
    for r in events:
        model, reasons = pick(r)
        acc = sim.account(model, blocks_of(r.body), r.t)
        res.requests += 1
        res.by_model[model] = res.by_model.get(model, 0) + 1
        prompt = acc.input_tokens + acc.cache_read_tokens + acc.cache_write_5m_tokens + acc.cache_write_1h_tokens
        res.prompt_tokens += prompt
        res.read_tokens += acc.cache_read_tokens
        res.write_tokens += acc.cache_write_5m_tokens + acc.cache_write_1h_tokens
        res.decisions.append((r, model, reasons))
        res.costs.append(price(catalog, model, acc, r.output_tokens))
        res.cost_nanos += res.costs[-1]
        if not r.side:
            prev = last_model.get(r.conv)
            if prev is not None and prev != model:
                res.switches += 1
                up = catalog.tier_index(catalog.tier_of(model)) > catalog.tier_index(catalog.tier_of(prev))
                (res.up if up else res.down).append((r.conv, len(res.decisions) - 1))
            last_model[r.conv] = model
    return res


def counterfactual(res: Result, convs: list[list[Req]], catalog) -> list[tuple[int, int, bool]]:
    """For each move down: the conversation's cost from that request until its next switch, as made
    and as if it had stayed on the old model (each with its own cache state). -> (made, stayed, paid)."""
    out = []
    order = list(res.decisions)
    for conv, idx in res.down:
        r0, model0, _ = order[idx]
        # the model before the switch
        prev = next(m for (r, m, _) in reversed(order[:idx]) if r.conv == conv and not r.side)
        # replay this conversation alone, up to idx, to rebuild its cache state
        seq = [(r, m) for (r, m, _) in order if r.conv == conv and not r.side]
        pos = next(i for i, (r, _) in enumerate(seq) if r is r0)
        end = pos + 1
        while end < len(seq) and seq[end][1] == model0:
            end += 1
        made = stayed = 0
        sim = CacheSim()
        for r, m in seq[:pos]:
            sim.account(m, blocks_of(r.body), r.t)
        alt = copy.deepcopy(sim)
        for r, m in seq[pos:end]:
            made += price(catalog, m, sim.account(m, blocks_of(r.body), r.t), r.output_tokens)
            stayed += price(catalog, prev, alt.account(prev, blocks_of(r.body), r.t), r.output_tokens)
        if end < len(seq):  # the request after the segment, on its own model, from either cache state
            r, m = seq[end]
            made += price(catalog, m, sim.account(m, blocks_of(r.body), r.t), r.output_tokens)
            stayed += price(catalog, m, alt.account(m, blocks_of(r.body), r.t), r.output_tokens)
        out.append((made, stayed, made <= stayed))
    return out


def _table(results: list[Result], catalog) -> None:
    print(f"\n{'policy':<36}{'cost USD':>10}{'switches':>10}{'cache hit':>11}{'below need':>12}  requests by model")
    for res in results:
        hit = res.read_tokens / res.prompt_tokens if res.prompt_tokens else 0.0
        models = ", ".join(f"{m.replace('claude-', '')} {n}" for m, n in sorted(res.by_model.items()))
        under = sum(1 for r, m, _ in res.decisions
                    if r.need and catalog.tier_index(catalog.tier_of(m)) < catalog.tier_index(r.need))
        print(f"{res.name:<36}{res.cost_nanos / 1e9:>10.4f}{res.switches:>10}{hit:>10.1%}{under:>12}  {models}")


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=24)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("-v", "--verbose", action="store_true", help="print every tierwise switch with its reason")
    ap.add_argument("--tasks", choices=("all", "dev"), default="all",
                    help="realistic rows the human tasks are drawn from: all (the reported figures) or dev "
                         "(for building: choosing a change never looks at test rows)")
    ap.add_argument("--own-system", action="store_true",
                    help="sensitivity: each conversation's system prompt its own (shares only the static prefix)")
    ap.add_argument("--breakdown", action="store_true",
                    help="tierwise against the label oracle per conversation and per request")
    return ap.parse_args()


def main() -> int:
    args = _args()
    settings = load_settings(None, environ={})
    catalog = settings.catalog
    convs = conversations(args.conversations, args.seed, args.tasks, args.own_system)
    n_req = sum(len(c) for c in convs)
    turns = [sum(1 for r in c if not r.side) for c in convs]
    peak = max(sum(b.tokens for b in blocks_of(r.body)) for c in convs for r in c)
    print(f"{len(convs)} conversations, {n_req} requests ({sum(turns)} agent turns, {n_req - sum(turns)} side requests); "
          f"turns per conversation {min(turns)}-{max(turns)}; largest prompt {peak:,} tokens")
    sonnet = catalog.model_for_tier("balanced").id

    naive_router = build_router("prior", settings, sticky=False)
    tierwise_router = build_router("prior", settings)
    capped_router = build_router("prior", settings, max_tier="balanced")
    old_router = build_router("learned", settings)

    def via(router):
        now = [0.0]
        if getattr(router, "conversations", None) is not None:
            router.conversations.clock = lambda: now[0]  # the replay's clock, not the machine's

        def pick(r: Req):
            now[0] = r.t
            d = router.decide(RouteRequest(r.body))
            named = d.model if d.model and catalog.get(d.model) is not None else None  # as the dispatcher does
            return (named or catalog.model_for_tier(d.tier).id), d.reasons
        return pick

    results = [run("always-Sonnet", lambda r: (sonnet, ()), convs, catalog),
               run("naive per-turn (previous default)", via(old_router), convs, catalog),
               run("naive per-turn (prior, no state)", via(naive_router), convs, catalog),
               run("tierwise (prior + conversation)", via(tierwise_router), convs, catalog),
               run("tierwise, max_tier = balanced", via(capped_router), convs, catalog),
               # the reference for quality: every request on the tier its task needs (the label), no state
               run("label oracle (each on its need)",
                   lambda r: (catalog.model_for_tier(r.need or settings.default_tier).id, ()), convs, catalog)]
    _table(results, catalog)
    print("(below need: requests served by a tier under the one their task needs, the quality cost of a policy)")
    tw = results[3]
    cf = counterfactual(tw, convs, catalog)
    unpaid = [x for x in cf if not x[2]]
    own = sum(1 for _, idx in tw.down if any(" pays:" in x for x in tw.decisions[idx][2]))
    print(f"\ntierwise switches: {len(tw.up)} up for capability, {len(tw.down)} down for cost; "
          f"by its own reckoning (in the reasons) {own} of {len(tw.down)} priced as paying; "
          f"re-simulated against staying: {len(unpaid)} cost more")
    for made, stayed, paid in cf:
        print(f"  move down: ${made / 1e9:.4f} as made vs ${stayed / 1e9:.4f} staying: {'paid' if paid else 'DID NOT PAY'}")
    # how well tierwise served the tasks: the tier it used vs the tier the task needs
    if args.verbose:
        for kind, lst in (("up", tw.up), ("down", tw.down)):
            for conv, idx in lst:
                r, m, reasons = tw.decisions[idx]
                print(f"  [{kind}] conv {conv} -> {m}: " + "; ".join(reasons))
    if args.breakdown:
        breakdown(tw, results[5], results[0])
    s = results[0].cost_nanos
    print()
    for res in (tw, results[4]):
        print(f"target {res.name} <= always-Sonnet: ${res.cost_nanos / 1e9:.4f} vs ${s / 1e9:.4f} "
              f"{'MET' if res.cost_nanos <= s else 'MISSED'}")
    for naive in results[1:3]:
        print(f"target tierwise < {naive.name}: ${tw.cost_nanos / 1e9:.4f} vs ${naive.cost_nanos / 1e9:.4f} "
              f"{'MET' if tw.cost_nanos < naive.cost_nanos else 'MISSED'}")
    print(f"target zero tierwise moves its own accounting shows did not pay: {len(tw.down) - own} "
          f"{'MET' if own == len(tw.down) else 'MISSED'}; re-simulated (stricter): {len(unpaid)} did not pay")
    oracle = results[5]
    print(f"reference: serving every request on the tier its task needs (label oracle, no state) costs "
          f"${oracle.cost_nanos / 1e9:.4f}, {oracle.cost_nanos / s - 1:+.1%} against always-Sonnet, which serves "
          f"{sum(1 for r, m, _ in results[0].decisions if r.need == 'deep')} deep-work requests on Sonnet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
